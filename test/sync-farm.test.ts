/**
 * `ferry sync` end to end, as a farm runs it: the real CLI in its own process against three
 * simulated PrusaLink printers.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { waitFor } from "./support/wait.ts";

const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;
const PASSWORD = "farm-secret-42";

interface Summary {
  ok: boolean;
  error?: string;
  targets: {
    target: string;
    outcome: string;
    planned: number;
    done: number;
    failed: number;
    skipped: number;
    state?: string;
    reason?: string;
    notes: string[];
  }[];
}

function ferry(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { cwd, env: { ...process.env, PRUSA_PASSWORD: PASSWORD, FERRY_LOG_LEVEL: "error" } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

async function syncJson(
  cwd: string,
  ...args: string[]
): Promise<{ code: number; summary: Summary; stderr: string }> {
  const { code, stdout, stderr } = await ferry(["sync", "--json", ...args], cwd);
  assert.doesNotMatch(stdout + stderr, new RegExp(PASSWORD), "the password must never be printed");
  return { code, summary: JSON.parse(stdout) as Summary, stderr };
}

const SOURCE: Record<string, number> = {
  "benchy.gcode": 20_000,
  "calibration/first layer.gcode": 5_000,
  "calibration/deep/nested/tower.bgcode": 12_345,
  "Клиенты/кронштейн для полки.gcode": 7_000,
  "customers/ACME Corp/Spice_Harvester_0.3mm_PLA_MK4IS_12h45m_final_v2.bgcode": 30_000,
};

const sortedFiles = (sim: PrusaLinkSim) =>
  sim
    .files()
    .map((f) => `${f.path.normalize("NFC")}:${f.size}`)
    .sort();
const expected = (source: Record<string, number>) =>
  Object.entries(source)
    .filter(([p]) => p.endsWith(".gcode") || p.endsWith(".bgcode"))
    .map(([p, s]) => `${p}:${s}`)
    .sort();

describe("ferry sync onto a PrusaLink farm", () => {
  let dir: string;
  let sims: PrusaLinkSim[];
  const source = { ...SOURCE };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-farm-"));
    for (const [path, size] of Object.entries(source)) {
      await mkdir(join(dir, "master", path, ".."), { recursive: true });
      await writeFile(join(dir, "master", path), Buffer.alloc(size, path.length));
    }
    await writeFile(join(dir, "master", "notes.txt"), "not a print file");
    sims = await Promise.all([0, 1, 2].map(() => PrusaLinkSim.start({ port: 0, password: PASSWORD })));
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "devices:",
        ...sims.map(
          (s, i) =>
            `  mk4-${"abc"[i]}: { type: prusalink, url: "${s.url}", username: maker, password: "\${PRUSA_PASSWORD}" }`,
        ),
        "groups:",
        "  farm: [mk4-a, mk4-b, mk4-c]",
        "syncs:",
        "  gcode:",
        "    source: ./master",
        "    targets: [farm]",
        "    mode: mirror",
        '    include: ["**/*.gcode", "**/*.bgcode"]',
        "    when: idle",
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await Promise.all(sims.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  test("--dry-run plans every file and changes nothing", async () => {
    const { code, summary } = await syncJson(dir, "--dry-run");
    assert.equal(code, 0);
    for (const t of summary.targets) assert.equal(t.planned, 5);
    for (const sim of sims) assert.deepEqual(sim.files(), []);
  });

  test("mirrors nested, long and Cyrillic names onto every printer; a re-run plans nothing", async () => {
    const first = await syncJson(dir);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      first.summary.targets.map((t) => [t.target, t.outcome, t.done]),
      [
        ["mk4-a", "done", 5],
        ["mk4-b", "done", 5],
        ["mk4-c", "done", 5],
      ],
    );
    for (const sim of sims) assert.deepEqual(sortedFiles(sim), expected(source));

    const second = await syncJson(dir);
    assert.equal(second.code, 0);
    for (const t of second.summary.targets) assert.equal(t.planned, 0, `${t.target} should be up to date`);
  });

  test("a busy printer is skipped; --include-busy syncs it without touching the printed file", async () => {
    const [a] = sims as [PrusaLinkSim];
    a.startPrint("benchy.gcode", 3600);
    delete source["benchy.gcode"];
    await rm(join(dir, "master", "benchy.gcode"));
    source["new part.gcode"] = 4_321;
    await writeFile(join(dir, "master", "new part.gcode"), Buffer.alloc(4_321, 1));

    const gated = await syncJson(dir);
    assert.equal(gated.code, 0, "skipped-busy is not a failure");
    const skipped = gated.summary.targets.find((t) => t.target === "mk4-a");
    assert.equal(skipped?.outcome, "skipped");
    assert.equal(skipped.state, "PRINTING");
    assert.ok(sortedFiles(a).includes("benchy.gcode:20000"));
    assert.ok(!sortedFiles(a).some((f) => f.startsWith("new part")));
    for (const sim of sims.slice(1)) assert.deepEqual(sortedFiles(sim), expected(source));

    const forced = await syncJson(dir, "--include-busy");
    assert.equal(forced.code, 0);
    const target = forced.summary.targets.find((t) => t.target === "mk4-a");
    assert.equal(target?.outcome, "done");
    assert.equal(target.skipped, 1);
    assert.deepEqual(sortedFiles(a), [...expected(source), "benchy.gcode:20000"].sort());
  });

  test("a printer that is down yields exit 1 while the others finish", async () => {
    const down = sims[2] as PrusaLinkSim;
    await down.close();
    source["late.gcode"] = 1_000;
    await writeFile(join(dir, "master", "late.gcode"), Buffer.alloc(1_000, 2));
    const { code, summary } = await syncJson(dir, "-x", "mk4-a");
    assert.equal(code, 1);
    assert.deepEqual(
      summary.targets.map((t) => [t.target, t.outcome]),
      [
        ["mk4-b", "done"],
        ["mk4-c", "unreachable"],
      ],
    );
    assert.ok(sortedFiles(sims[1] as PrusaLinkSim).includes("late.gcode:1000"));
  });

  test("a newer source file replaces the printer's copy, retrying through a dropped connection", async () => {
    const b = sims[1] as PrusaLinkSim;
    const path = join(dir, "master", "calibration", "first layer.gcode");
    await writeFile(path, Buffer.alloc(6_000, 3));
    const future = new Date(Date.now() + 3_600_000);
    await utimes(path, future, future);
    b.injectFault({ resetAfterBytes: 100 });
    const { code, summary } = await syncJson(dir, "-p", "mk4-b");
    assert.equal(code, 0);
    assert.deepEqual(
      summary.targets.map((t) => [t.target, t.done, t.failed]),
      [["mk4-b", 1, 0]],
    );
    assert.ok(sortedFiles(b).includes("calibration/first layer.gcode:6000"));
  });

  test("compare: checksum onto printers, which give no digests, compares by size and time and says so", async () => {
    const b = sims[1] as PrusaLinkSim;
    await writeFile(
      join(dir, "checksum.yaml"),
      [
        "devices:",
        `  mk4-b: { type: prusalink, url: "${b.url}", username: maker, password: "\${PRUSA_PASSWORD}" }`,
        "syncs:",
        '  gcode: { source: ./master, targets: [mk4-b], mode: mirror, include: ["**/*.gcode", "**/*.bgcode"], compare: checksum }',
        "",
      ].join("\n"),
    );
    const { code, summary } = await syncJson(dir, "-c", "checksum.yaml", "--dry-run");
    const bySizeAndTime = await syncJson(dir, "-p", "mk4-b", "--dry-run");
    assert.equal(code, 0);
    assert.deepEqual(
      summary.targets.map((t) => [t.target, t.notes]),
      [["mk4-b", ["no checksum in common with the source: compared by size and time"]]],
    );
    assert.equal(summary.targets[0]?.planned, bySizeAndTime.summary.targets[0]?.planned);
    assert.deepEqual(bySizeAndTime.summary.targets[0]?.notes, []);
  });

  test("a run that starts while another is sending changes nothing and names the run it waits for", async () => {
    // The printer holds the first run's upload until the test lets it go: the first run provably
    // holds the lock while the others start, on a machine of any speed.
    const held = await PrusaLinkSim.start({ port: 0, password: PASSWORD });
    held.holdUploads();
    const cwd = join(dir, "overlap");
    try {
      await mkdir(join(cwd, "master"), { recursive: true });
      // Bigger than the socket buffers, so the held upload's body is still being sent.
      await writeFile(join(cwd, "master", "big.gcode"), Buffer.alloc(16 * 1024 * 1024, 7));
      await writeFile(
        join(cwd, "ferry.yaml"),
        [
          "devices:",
          `  held: { type: prusalink, url: "${held.url}", username: maker, password: "\${PRUSA_PASSWORD}" }`,
          "syncs:",
          "  gcode: { source: ./master, targets: [held], mode: mirror }",
          "",
        ].join("\n"),
      );
      const first = syncJson(cwd);
      let firstOver = false;
      const over = () => (firstOver = true);
      first.then(over, over);
      await waitFor("the first run's upload to reach the printer", () => {
        if (firstOver) throw new Error("the first run ended before its upload reached the printer");
        return held.transfer();
      });

      const second = await syncJson(cwd);
      assert.equal(second.code, 1);
      assert.match(second.summary.error ?? "", /another ferry sync \(pid \d+, started .+\) is running/);
      assert.deepEqual(second.summary.targets, []);
      const preview = await syncJson(cwd, "--dry-run");
      assert.equal(preview.code, 0, "a dry run only looks");
      assert.equal(held.transfer()?.path, "big.gcode", "the first run was uploading all along");

      held.releaseUploads();
      const done = await first;
      assert.equal(done.code, 0, done.stderr);
      assert.equal(done.summary.targets[0]?.done, 1);
      assert.equal((await syncJson(cwd)).code, 0, "the lock went with the first run");
    } finally {
      await held.close();
    }
  });

  test("a bad config exits 2 naming the line and the field", async () => {
    await writeFile(
      join(dir, "bad.yaml"),
      [
        "devices:",
        "  p1: { type: prusalink, url: 42, username: maker, password: x }",
        "groups:",
        "  farm: [p1, nope]",
        "",
      ].join("\n"),
    );
    const { code, stderr } = await ferry(["sync", "-c", "bad.yaml"], dir);
    assert.equal(code, 2);
    assert.match(stderr, /bad\.yaml:2:\d+ devices\.p1\.url/);
    assert.match(stderr, /bad\.yaml:4:\d+ groups\.farm\[1\]/);
  });
});
