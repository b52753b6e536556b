/** Two syncs onto one printer share its single transfer slot instead of colliding on it. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../config/index.ts";
import { EventBus } from "../core/events.ts";
import { silentLogger } from "../core/logger.ts";
import { Devices, deviceKinds } from "../devices/devices.ts";
import { PrusaLinkSim } from "../sim/prusalink/index.ts";
import type { SyncEvents } from "./events.ts";
import { runSync } from "./run.ts";

describe("syncs that share a device", () => {
  let dir: string;
  let sim: PrusaLinkSim;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-shared-"));
    for (const folder of ["a", "b"]) {
      await mkdir(join(dir, folder));
      for (let i = 0; i < 3; i++)
        await writeFile(join(dir, folder, `${folder}${i}.gcode`), Buffer.alloc(60_000, i));
    }
    // Slow enough that uploads from the two syncs would overlap if nothing held them apart.
    sim = await PrusaLinkSim.start({ port: 0, password: "pw", rate: 600_000 });
  });
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("take turns on a printer that accepts one transfer at a time", async () => {
    const config = parseConfig(
      [
        "devices:",
        `  p: { type: prusalink, url: "${sim.url}", username: maker, password: pw }`,
        "syncs:",
        '  one: { source: ./a, targets: ["p:a"], mode: mirror }',
        '  two: { source: ./b, targets: ["p:b", "p:b-copy"], mode: mirror }',
        "",
      ].join("\n"),
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const devices = new Devices(config, silentLogger);
    const bus = new EventBus<SyncEvents>();
    const refusals: string[] = [];
    bus.on("sync.action.failed", (e) => refusals.push(`${e.target} ${e.action.path}: ${e.error.message}`));
    try {
      const reports = (
        await Promise.all(
          [...config.syncs.values()].map((sync) => runSync(sync, devices, { bus, attempts: 1 })),
        )
      ).flat();
      // One attempt per file: a single "another upload is running" refusal would fail a file.
      assert.deepEqual(refusals, []);
      assert.deepEqual(
        reports.map((r) => [r.target, r.outcome, r.done]),
        [
          ["p:a", "done", 3],
          ["p:b", "done", 3],
          ["p:b-copy", "done", 3],
        ],
      );
      assert.equal(sim.files().length, 9);
    } finally {
      await devices.close();
    }
  });
});
