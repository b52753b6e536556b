/**
 * kill -9 in the middle of `ferry sync`: the printer keeps no partial file, nothing is deleted
 * that should stay, and the next run finishes the job and then plans nothing.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { waitFor } from "./support/wait.ts";

const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;
const SIZE = 120_000;

function runSync(cwd: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, "sync", "--json"], { cwd }, (error, stdout) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout });
    });
  });
}

describe("kill -9 during ferry sync", () => {
  let dir: string;
  let sim: PrusaLinkSim;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-chaos-"));
    await mkdir(join(dir, "master"));
    for (let i = 0; i < 4; i++)
      await writeFile(join(dir, "master", `part-${i}.gcode`), Buffer.alloc(SIZE, i));
    // 400 kB/s: each file takes 0.3 s, so the kill lands inside an upload.
    sim = await PrusaLinkSim.start({ port: 0, password: "pw", rate: 400_000 });
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "devices:",
        `  p: { type: prusalink, url: "${sim.url}", username: maker, password: pw }`,
        "syncs:",
        "  gcode: { source: ./master, targets: [p], mode: mirror }",
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("mid-upload: no partial file on the printer; the next run completes and the one after plans nothing", async () => {
    const child = spawn(process.execPath, [cli, "sync"], { cwd: dir, stdio: "ignore" });
    // Wait until one file is stored and the next one is on its way.
    await waitFor(
      "one file stored and the next one on its way",
      () => sim.files().length >= 1 && (sim.transfer()?.transferred ?? 0) > 10_000,
    );
    assert.ok(sim.snapshot().transfer, "an upload is running when the kill comes");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    await waitFor("the printer to notice the dropped connection", () => !sim.transfer());

    const stored = sim.files();
    assert.ok(stored.length >= 1 && stored.length < 4, `${stored.length} files after the kill`);
    for (const file of stored) assert.equal(file.size, SIZE, `${file.path} is whole`);

    const rerun = await runSync(dir);
    assert.equal(rerun.code, 0, rerun.stdout);
    assert.deepEqual(
      sim
        .files()
        .map((f) => `${f.path}:${f.size}`)
        .sort(),
      [0, 1, 2, 3].map((i) => `part-${i}.gcode:${SIZE}`),
    );
    const summary = JSON.parse((await runSync(dir)).stdout) as { targets: { planned: number }[] };
    assert.equal(summary.targets[0]?.planned, 0);
  });
});
