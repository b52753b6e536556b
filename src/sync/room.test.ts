/** A nearly full printer: excess files make room first only when the new ones would not fit. */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EventBus } from "../core/events.ts";
import type { EngineEvents } from "./events.ts";
import { runSync } from "./run.ts";
import { printerFixture, type PrinterFixture } from "./test-support.ts";

describe("room on a nearly full printer", () => {
  let farm: PrinterFixture;
  const master = (name = "") => join(farm.dir, "master", name);
  const run = async () => {
    const bus = new EventBus<EngineEvents>();
    const order: string[] = [];
    bus.on("task.done", ({ payload: e }) => order.push(`${e.what.split(" ")[0] ?? ""} ${e.path ?? ""}`));
    const [report] = await runSync(farm.sync("gcode"), farm.devices, { bus, attempts: 1 });
    return { report, order };
  };

  before(async () => {
    farm = await printerFixture(["gcode: { source: ./master, targets: [p], mode: mirror }"], {
      capacity: 1_000_000,
    });
    await mkdir(master());
  });
  after(() => farm.close());

  test("while the new files fit, they go in first and the excess leaves after", async () => {
    await writeFile(master("old.gcode"), Buffer.alloc(300_000, 1));
    assert.equal((await run()).report?.done, 1);
    await rm(master("old.gcode"));
    await writeFile(master("small.gcode"), Buffer.alloc(300_000, 2));
    const { report, order } = await run();
    assert.deepEqual(order, ["send small.gcode", "delete old.gcode"]);
    assert.deepEqual(report?.notes, []);
  });

  test("when they would not fit, the excess goes first and every new file lands", async () => {
    await rm(master("small.gcode"));
    await writeFile(master("big.gcode"), Buffer.alloc(800_000, 3));
    const { report, order } = await run();
    assert.equal(report?.outcome, "done", JSON.stringify(report?.errors));
    assert.deepEqual(order, ["delete small.gcode", "send big.gcode"]);
    assert.match(report.notes.join("\n"), /deleting excess files first: 800 kB to add, 700 kB free/);
    assert.deepEqual(
      farm.sim.files().map((f) => `${f.path}:${f.size}`),
      ["big.gcode:800000"],
    );
  });
});
