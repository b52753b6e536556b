/** A source folder that does not exist is a configuration problem: named once, exit 2, no target touched. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
let dir: string;
let sim: PrusaLinkSim;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-source-"));
  sim = await PrusaLinkSim.start({ port: 0, password: "pw" });
  await mkdir(join(dir, "out"));
  await writeFile(join(dir, "out", "keep.gcode"), "kept");
  await writeFile(
    join(dir, "ferry.yaml"),
    [
      "data_dir: ./data",
      "devices:",
      `  p: { type: prusalink, url: "${sim.url}", username: maker, password: pw }`,
      "syncs:",
      "  gcode: { source: ./mastr, targets: [p, ./out], mode: mirror }",
      "",
    ].join("\n"),
  );
});
after(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

test("a missing source exits 2 naming it, before touching any target", async () => {
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, "sync"], { cwd: dir }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(result.code, 2, result.stderr);
  assert.equal(
    result.stderr.trim(),
    `ferry: sync gcode: source ./mastr does not exist (${join(dir, "mastr")}); check the path in ${join(dir, "ferry.yaml")}`,
  );
  assert.doesNotMatch(result.stdout, /UNREACHABLE/);
  assert.deepEqual(await readdir(join(dir, "out")), ["keep.gcode"]);
  assert.deepEqual(sim.files(), []);
});

test("an empty config says there is nothing to do and creates nothing; -p names no device when there is none", async () => {
  const empty = await mkdtemp(join(tmpdir(), "ferry-empty-"));
  try {
    await writeFile(join(empty, "ferry.yaml"), "");
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(process.execPath, [cli, ...args], { cwd: empty }, (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    const idle = await run(["sync"]);
    assert.equal(idle.code, 0);
    assert.match(idle.stderr, /no devices and no syncs: nothing to do/);
    assert.deepEqual(await readdir(empty), ["ferry.yaml"]);
    await writeFile(join(empty, "ferry.yaml"), "syncs:\n  s: { source: ./a, targets: [./b], mode: copy }\n");
    const unknown = await run(["sync", "-p", "nosuch"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown device "nosuch" in -p\/-x; .* has: none$/m);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});
