/** Config files at the edges: a data_dir that is a file, binary and huge files, no syncs, many devices. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ConfigError } from "./errors.ts";
import { loadConfig, parseConfig } from "./load.ts";
import { namesOrNone, nothingToDo } from "./nothing-to-do.ts";
import { KINDS } from "./test-fixtures.ts";

const kinds = KINDS;
const cli = new URL("../../bin/ferry.js", import.meta.url).pathname;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-config-edges-"));
});
after(() => rm(dir, { recursive: true, force: true }));

async function configError(file: string): Promise<ConfigError> {
  const error = await loadConfig(file, { deviceKinds: kinds, env: {} }).then(
    () => assert.fail("expected a ConfigError"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ConfigError, String(error));
  return error;
}

describe("data_dir", () => {
  it("a file where data_dir should be is a problem at data_dir, naming the path", async () => {
    const here = join(dir, "file-data-dir");
    await mkdir(here);
    await writeFile(join(here, "data"), "not a folder\n");
    await writeFile(join(here, "ferry.yaml"), "devices: {}\ndata_dir: ./data\n");
    const error = await configError(join(here, "ferry.yaml"));
    assert.equal(error.problems.length, 1);
    const [problem] = error.problems;
    assert.equal(problem?.path, "data_dir");
    assert.equal(problem.line, 2);
    assert.match(error.message, new RegExp(`${join(here, "data")} is a file, not a folder`));
  });

  it("the default ./ferry-data being a file is named too", async () => {
    const here = join(dir, "file-default");
    await mkdir(here);
    await writeFile(join(here, "ferry-data"), "");
    await writeFile(join(here, "ferry.yaml"), "");
    const error = await configError(join(here, "ferry.yaml"));
    assert.match(error.message, /ferry-data is a file, not a folder \(data_dir is not set/);
  });

  it("a data_dir under a file is a problem; a missing one is not", async () => {
    const here = join(dir, "under-file");
    await mkdir(here);
    await writeFile(join(here, "blob"), "");
    await writeFile(join(here, "ferry.yaml"), "data_dir: ./blob/data\n");
    assert.match((await configError(join(here, "ferry.yaml"))).message, /blob\/data lies under a file/);
    await writeFile(join(here, "ferry.yaml"), "data_dir: ./not-yet/data\n");
    const config = await loadConfig(join(here, "ferry.yaml"), { deviceKinds: kinds, env: {} });
    assert.equal(config.dataDir, join(here, "not-yet", "data"));
  });

  it("ferry sync exits 2 with the data_dir problem, and touches nothing", async () => {
    const here = join(dir, "cli-data-dir");
    await mkdir(join(here, "in"), { recursive: true });
    await writeFile(join(here, "data"), "");
    await writeFile(
      join(here, "ferry.yaml"),
      "data_dir: ./data\nsyncs:\n  s: { source: ./in, targets: [./out], mode: copy }\n",
    );
    const result = await promisify(execFile)(process.execPath, [cli, "sync"], { cwd: here }).then(
      () => assert.fail("expected exit 2"),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /ferry\.yaml:1:\d+ data_dir: .*data is a file, not a folder/);
  });
});

describe("files that are not configs", () => {
  it("a binary file is one problem, not one per line", async () => {
    const file = join(dir, "binary.yaml");
    const bytes = Buffer.alloc(64 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 256;
    await writeFile(file, bytes);
    const error = await configError(file);
    assert.deepEqual(error.problems, [
      { path: "", message: "is not a text file (it holds NUL bytes); a config is YAML or JSON text" },
    ]);
  });

  it("a file with thousands of problems shows a screenful and how many more", () => {
    const text = Array.from({ length: 500 }, (_, i) => `key${i}: 1`).join("\n");
    const error = (() => {
      try {
        parseConfig(text, "ferry.yaml", { deviceKinds: kinds, env: {} });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(error instanceof ConfigError);
    assert.equal(error.problems.length, 500);
    const lines = error.message.split("\n");
    assert.equal(lines.length, 1 + 20 + 1);
    assert.equal(lines[0], "ferry.yaml: 500 problems");
    assert.equal(lines.at(-1), "  … and 480 more");
  });

  it("syntax errors name the line, without quoting the text (it may be noise or a secret)", () => {
    const text = `- a\npassword: hunter2-secret\n`;
    try {
      parseConfig(text, "ferry.yaml", { deviceKinds: kinds, env: {} });
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.doesNotMatch(error.message, /hunter2/);
      assert.ok(error.problems.some((p) => p.line === 2));
    }
  });
});

describe("nothing to do", () => {
  it("says a config without syncs has nothing to do", () => {
    const empty = parseConfig("", "/srv/ferry.yaml", { deviceKinds: kinds, env: {} });
    assert.equal(
      nothingToDo(empty),
      '/srv/ferry.yaml has no devices and no syncs: nothing to do (add a sync under "syncs:"; see docs/configuration.md)',
    );
    const devicesOnly = parseConfig(
      "devices:\n  p: { type: prusalink, url: 'http://127.0.0.1:9', password: x }\n",
      "/srv/ferry.yaml",
      { deviceKinds: kinds, env: {} },
    );
    assert.match(nothingToDo(devicesOnly) ?? "", /has 1 device but no syncs: nothing to do/);
    const withSync = parseConfig(
      "syncs:\n  s: { source: ./a, targets: [./b], mode: copy }\n",
      "/srv/f.yaml",
      {
        deviceKinds: kinds,
        env: {},
      },
    );
    assert.equal(nothingToDo(withSync), undefined);
  });

  it("an empty list of names reads as none", () => {
    assert.equal(namesOrNone(new Map().keys()), "none");
    assert.equal(namesOrNone(["a", "b"]), "a, b");
  });
});

describe("a large farm", () => {
  it("loads 20,000 printers in one group, and a sync to each of them", () => {
    const n = 20_000;
    const names = Array.from({ length: n }, (_, i) => `p${i}`);
    const text = [
      "devices:",
      ...names.map(
        (name, i) => `  ${name}: { type: prusalink, url: "http://127.0.0.1:${1024 + i}", password: x }`,
      ),
      "groups:",
      `  farm: [${names.join(", ")}]`,
      "syncs:",
      "  all: { source: ./master, targets: [farm], mode: mirror }",
      "  usb:",
      "    source: ./master",
      "    mode: copy",
      "    targets:",
      ...names.map((name) => `      - ${name}:/usb`),
    ].join("\n");
    const config = parseConfig(text, join(dir, "farm.yaml"), { deviceKinds: kinds, env: {} });
    assert.equal(config.devices.size, n);
    assert.equal(config.groups.get("farm")?.length, n);
    assert.equal(config.syncs.get("all")?.targets.length, n);
    assert.equal(config.syncs.get("usb")?.targets.length, n);
  });
});
