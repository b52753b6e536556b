/** Two syncs onto one printer share its single transfer slot instead of colliding on it. */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EventBus } from "../core/events.ts";
import type { EngineEvents } from "./events.ts";
import { runSyncs } from "./run.ts";
import { printerFixture, type PrinterFixture } from "./test-support.ts";

describe("syncs that share a device", () => {
  let farm: PrinterFixture;

  before(async () => {
    farm = await printerFixture(
      [
        'one: { source: ./a, targets: ["p:a"], mode: mirror }',
        'two: { source: ./b, targets: ["p:b", "p:b-copy"], mode: mirror }',
      ],
      // Slow enough that uploads from the two syncs would overlap if nothing held them apart.
      { rate: 600_000 },
    );
    for (const folder of ["a", "b"]) {
      await mkdir(join(farm.dir, folder));
      for (let i = 0; i < 3; i++) {
        await writeFile(join(farm.dir, folder, `${folder}${i}.gcode`), Buffer.alloc(60_000, i));
      }
    }
  });
  after(() => farm.close());

  test("take turns on a printer that accepts one transfer at a time", async () => {
    const bus = new EventBus<EngineEvents>();
    const refusals: string[] = [];
    bus.on("task.failed", ({ payload: e }) => refusals.push(`${e.target ?? ""} ${e.what}: ${e.error}`));
    // Both syncs in one run, as `ferry sync` runs them: the printer's one queue serializes them.
    const reports = await runSyncs([...farm.config.syncs.values()], farm.devices, { bus, attempts: 1 });
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
    assert.equal(farm.sim.files().length, 9);
  });
});
