/** Delivery records against a printer whose clock is wrong: what was sent is known, not guessed. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig, type SyncConfig } from "../config/index.ts";
import { silentLogger } from "../core/logger.ts";
import { Devices, deviceKinds } from "../devices/devices.ts";
import { PrusaLinkSim } from "../sim/prusalink/index.ts";
import { deliveryFiles } from "../store/deliveries.ts";
import type { TargetReport } from "./events.ts";
import { runSync } from "./run.ts";

const HOUR = 3_600_000;
const reasons = (report: TargetReport | undefined) =>
  report?.actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : `${a.type} ${a.path}`));

describe("delivery records", () => {
  let dir: string;
  let sim: PrusaLinkSim;
  let sync: SyncConfig;
  let devices: Devices;
  /** Moves the printer's clock on, so a later upload gets a later stamp. */
  let later = 0;
  const run = (data = join(dir, "ferry-data"), dryRun = false) =>
    runSync(sync, devices, { deliveries: deliveryFiles(data, silentLogger), dryRun }).then(([r]) => r);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-records-"));
    await mkdir(join(dir, "master"));
    for (const name of ["a.gcode", "b.gcode"])
      await writeFile(join(dir, "master", name), Buffer.alloc(5_000, 1));
    // A farm printer with no time server: its clock is three hours behind this machine's.
    sim = await PrusaLinkSim.start({
      port: 0,
      password: "pw",
      apiKey: "hand",
      clock: () => Date.now() - 3 * HOUR + later,
    });
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

  test("a re-run plans nothing although the printer stamps every copy hours in the past", async () => {
    assert.equal((await run())?.done, 2);
    assert.deepEqual(reasons(await run()), []);
    // Without the records the same re-run would send everything again: the check can fail.
    assert.deepEqual(reasons(await run(join(dir, "no-records"), true)), ["a.gcode:newer", "b.gcode:newer"]);
  });

  test("a source file edited since it was sent goes again, the others stay", async () => {
    await writeFile(join(dir, "master", "a.gcode"), Buffer.alloc(5_000, 2));
    const later = new Date(Date.now() + 5_000);
    await utimes(join(dir, "master", "a.gcode"), later, later);
    const report = await run();
    assert.deepEqual(reasons(report), ["a.gcode:changed"]);
    assert.equal(report?.done, 1);
    assert.deepEqual(reasons(await run()), []);
  });

  test("a copy someone else replaced on the printer is judged afresh, and a deleted one forgotten", async () => {
    // An operator uploads another b.gcode of the same size by hand, from PrusaSlicer say.
    later += 10_000;
    const res = await fetch(`${sim.url}/api/v1/files/usb/b.gcode`, {
      method: "PUT",
      headers: { "X-Api-Key": "hand", Overwrite: "?1" },
      body: Buffer.alloc(5_000, 9),
    });
    assert.equal(res.status, 201);
    // No record fits that copy any more, so the time rule judges it (and the skewed clock says stale).
    assert.deepEqual(reasons(await run()), ["b.gcode:newer"]);
    assert.deepEqual(reasons(await run()), []);
    await rm(join(dir, "master", "b.gcode"));
    assert.deepEqual(reasons(await run()), ["delete b.gcode"]);
    await writeFile(join(dir, "master", "b.gcode"), Buffer.alloc(5_000, 1));
    assert.deepEqual(reasons(await run()), ["b.gcode:missing"]);
    assert.deepEqual(reasons(await run()), []);
  });
});
