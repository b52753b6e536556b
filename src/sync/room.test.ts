/** A nearly full printer: excess files make room first only when the new ones would not fit. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig, type SyncConfig } from "../config/index.ts";
import { EventBus } from "../core/events.ts";
import { silentLogger } from "../core/logger.ts";
import { Devices, deviceKinds } from "../devices/devices.ts";
import { PrusaLinkSim } from "../sim/prusalink/index.ts";
import type { SyncEvents } from "./events.ts";
import { runSync } from "./run.ts";

describe("room on a nearly full printer", () => {
  let dir: string;
  let sim: PrusaLinkSim;
  let sync: SyncConfig;
  let devices: Devices;
  const run = async () => {
    const bus = new EventBus<SyncEvents>();
    const order: string[] = [];
    bus.on("sync.action.done", (e) => order.push(`${e.action.type} ${e.action.path}`));
    const [report] = await runSync(sync, devices, { bus, attempts: 1 });
    return { report, order };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-room-"));
    await mkdir(join(dir, "master"));
    sim = await PrusaLinkSim.start({ port: 0, password: "pw", capacity: 1_000_000 });
    const config = parseConfig(
      [
        "devices:",
        `  p: { type: prusalink, url: "${sim.url}", username: maker, password: pw }`,
        "syncs:",
        "  gcode: { source: ./master, targets: [p], mode: mirror }",
        "",
      ].join("\n"),
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    sync = config.syncs.get("gcode") as SyncConfig;
    devices = new Devices(config, silentLogger);
  });
  after(async () => {
    await devices.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("while the new files fit, they go in first and the excess leaves after", async () => {
    await writeFile(join(dir, "master", "old.gcode"), Buffer.alloc(300_000, 1));
    assert.equal((await run()).report?.done, 1);
    await rm(join(dir, "master", "old.gcode"));
    await writeFile(join(dir, "master", "small.gcode"), Buffer.alloc(300_000, 2));
    const { report, order } = await run();
    assert.deepEqual(order, ["upload small.gcode", "delete old.gcode"]);
    assert.deepEqual(report?.notes, []);
  });

  test("when they would not fit, the excess goes first and every new file lands", async () => {
    await rm(join(dir, "master", "small.gcode"));
    await writeFile(join(dir, "master", "big.gcode"), Buffer.alloc(800_000, 3));
    const { report, order } = await run();
    assert.equal(report?.outcome, "done", JSON.stringify(report?.errors));
    assert.deepEqual(order, ["delete small.gcode", "upload big.gcode"]);
    assert.match(report.notes.join("\n"), /deleting excess files first: 800 kB to add, 700 kB free/);
    assert.deepEqual(
      sim.files().map((f) => `${f.path}:${f.size}`),
      ["big.gcode:800000"],
    );
  });
});
