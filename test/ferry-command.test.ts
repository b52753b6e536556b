/**
 * Starting `ferry`: bin/ferry.js on a Node too old for the TypeScript sources says what it needs
 * and how to get it (exit 1) instead of failing on ".ts"; the bin/ferry wrapper runs Ferry from
 * any folder, through a link on PATH, with cron's bare environment.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const wrapper = new URL("../bin/ferry", import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }) {
  return promisify(execFile)(file, args, options).then(
    ({ stdout, stderr }): Result => ({ code: 0, stdout, stderr }),
    (error: unknown) => error as Result,
  );
}

/** Runs bin/ferry.js on this Node, made to report `version` as its own. */
function asNode(version: string, args: string[]): Promise<Result> {
  const pretend = `Object.defineProperty(process, "versions", { value: { ...process.versions, node: "${version}" } });`;
  return run(
    process.execPath,
    ["--import", `data:text/javascript,${encodeURIComponent(pretend)}`, cli, ...args],
    {},
  );
}

function assertTooOld(result: Result, version: string): void {
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.doesNotMatch(result.stderr, /ERR_UNKNOWN_FILE_EXTENSION|\n\s+at /);
  assert.ok(result.stderr.includes(`needs Node >= 22.18; this is Node ${version}`), result.stderr);
  assert.match(result.stderr, /npm run ferry -- /);
  assert.ok(result.stderr.includes(`${wrapper} ARGS`), `names the wrapper: ${result.stderr}`);
}

describe("bin/ferry.js on an old Node", () => {
  it("says what Node it needs and how to get one, and exits 1", async () => {
    assertTooOld(await asNode("22.17.1", ["--version"]), "22.17.1");
    assertTooOld(await asNode("20.20.2", ["sync", "--dry-run"]), "20.20.2");
  });

  it("runs on 22.18", async () => {
    assert.deepEqual(await asNode("22.18.0", ["--version"]), { code: 0, stdout: "0.1.0\n", stderr: "" });
  });

  it("says the same on a real old Node, where the machine has one", async (t) => {
    const old = "/usr/bin/node";
    const version = existsSync(old)
      ? (await run(old, ["-p", "process.versions.node"], {})).stdout.trim()
      : "";
    const [major = 0, minor = 0] = version.split(".").map(Number);
    if (version === "" || major > 22 || (major === 22 && minor >= 18)) {
      t.skip(`no Node older than 22.18 at ${old}`);
      return;
    }
    assertTooOld(await run(old, [cli, "--version"], {}), version);
  });
});

describe("the bin/ferry wrapper", () => {
  let dir: string;
  let farm: string;
  let elsewhere: string;
  // Cron's PATH; this test's Node last, for a machine whose only new enough Node is elsewhere.
  const env = { PATH: `/usr/bin:/bin:${dirname(process.execPath)}` };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-wrapper-"));
    farm = join(dir, "farm");
    elsewhere = join(dir, "elsewhere");
    await mkdir(join(farm, "master"), { recursive: true });
    await mkdir(join(elsewhere, "bin"), { recursive: true });
    await writeFile(join(farm, "master", "benchy.gcode"), "G28\n");
    await writeFile(
      join(farm, "ferry.yaml"),
      "syncs:\n  prints: { source: ./master, targets: [./copy], mode: copy }\n",
    );
    await symlink(wrapper, join(elsewhere, "bin", "ferry"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds ferry.yaml in the folder it runs in", async () => {
    const result = await run(wrapper, ["sync", "--dry-run"], { cwd: farm, env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /prints → \.\/copy: 1 to do/);
  });

  it("runs through a link on PATH, with -c FILE from another folder", async () => {
    const linked = join(elsewhere, "bin", "ferry");
    const result = await run(linked, ["sync", "--dry-run", "-c", join(farm, "ferry.yaml")], {
      cwd: elsewhere,
      env,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /prints → \.\/copy: 1 to do/);

    const lost = await run(linked, ["sync", "--dry-run"], { cwd: elsewhere, env });
    assert.equal(lost.code, 2);
    assert.match(lost.stderr, /no ferry\.yaml, ferry\.yml or ferry\.json here; pass -c FILE/);
  });
});
