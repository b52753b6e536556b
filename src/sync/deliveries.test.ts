/** Delivery records against a printer whose clock is wrong: what was sent is known, not guessed. */
import assert from "node:assert/strict";
import { mkdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { storeDeliveries } from "../store/deliveries.ts";
import { openStore, type Store } from "../store/store.ts";
import type { TargetReport } from "./events.ts";
import { runSync } from "./run.ts";
import { printerFixture, type PrinterFixture } from "./test-support.ts";

const HOUR = 3_600_000;
const reasons = (report: TargetReport | undefined) =>
  report?.actions.map((a) => (a.type === "upload" ? `${a.path}:${a.reason}` : `${a.type} ${a.path}`));

describe("delivery records", () => {
  let farm: PrinterFixture;
  const stores: Store[] = [];
  /** Moves the printer's clock on, so a later upload gets a later stamp. */
  let later = 0;
  const master = (name = "") => join(farm.dir, "master", name);
  const run = async (data = join(farm.dir, "ferry-data"), dryRun = false) => {
    const store = await openStore({ dataDir: data });
    stores.push(store);
    const [report] = await runSync(farm.sync("gcode"), farm.devices, {
      deliveries: storeDeliveries(store),
      dryRun,
    });
    await store.close();
    return report;
  };

  before(async () => {
    // A farm printer with no time server: its clock is three hours behind this machine's.
    farm = await printerFixture(["gcode: { source: ./master, targets: [p], mode: mirror }"], {
      apiKey: "hand",
      clock: () => Date.now() - 3 * HOUR + later,
    });
    await mkdir(master());
    for (const name of ["a.gcode", "b.gcode"]) await writeFile(master(name), Buffer.alloc(5_000, 1));
  });
  after(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
    await farm.close();
  });

  test("a re-run plans nothing although the printer stamps every copy hours in the past", async () => {
    assert.equal((await run())?.done, 2);
    assert.deepEqual(reasons(await run()), []);
    // Without the records the same re-run would send everything again: the check can fail.
    assert.deepEqual(reasons(await run(join(farm.dir, "no-records"), true)), [
      "a.gcode:newer",
      "b.gcode:newer",
    ]);
  });

  test("a source file edited since it was sent goes again, the others stay", async () => {
    await writeFile(master("a.gcode"), Buffer.alloc(5_000, 2));
    const soon = new Date(Date.now() + 5_000);
    await utimes(master("a.gcode"), soon, soon);
    const report = await run();
    assert.deepEqual(reasons(report), ["a.gcode:changed"]);
    assert.equal(report?.done, 1);
    assert.deepEqual(reasons(await run()), []);
  });

  test("a copy someone else replaced on the printer is judged afresh, and a deleted one forgotten", async () => {
    // An operator uploads another b.gcode of the same size by hand, from PrusaSlicer say.
    later += 10_000;
    const res = await fetch(`${farm.sim.url}/api/v1/files/usb/b.gcode`, {
      method: "PUT",
      headers: { "X-Api-Key": "hand", Overwrite: "?1" },
      body: Buffer.alloc(5_000, 9),
    });
    assert.equal(res.status, 201);
    // No record fits that copy any more, so the time rule judges it (and the skewed clock says stale).
    assert.deepEqual(reasons(await run()), ["b.gcode:newer"]);
    assert.deepEqual(reasons(await run()), []);
    await rm(master("b.gcode"));
    assert.deepEqual(reasons(await run()), ["delete b.gcode"]);
    await writeFile(master("b.gcode"), Buffer.alloc(5_000, 1));
    assert.deepEqual(reasons(await run()), ["b.gcode:missing"]);
    assert.deepEqual(reasons(await run()), []);
  });
});
