import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Logger } from "../core/logger.ts";
import { silentLogger } from "../core/logger.ts";
import { DeliveryFile, deliveryFiles } from "./deliveries.ts";

const record = (size: number) => ({ source: { size, modTime: 1 }, target: { size, modTime: 2 } });

describe("delivery records in the data folder", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-deliveries-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("survive a reopen, one file per target of a sync, no temp files left", async () => {
    const open = deliveryFiles(dir, silentLogger);
    const a = await open("gcode", "mk4-a");
    a.set("x.gcode", record(10));
    a.set("y.gcode", record(20));
    await Promise.all([a.save(), a.save()]);
    a.delete("y.gcode");
    await a.save();
    const b = await open("gcode", "mk4-b");
    b.set("x.gcode", record(30));
    await b.save();

    assert.deepEqual((await open("gcode", "mk4-a")).get("x.gcode"), record(10));
    assert.equal((await open("gcode", "mk4-a")).get("y.gcode"), undefined);
    assert.deepEqual((await open("gcode", "mk4-b")).get("x.gcode"), record(30));
    assert.equal((await open("other", "mk4-a")).get("x.gcode"), undefined);
    assert.equal((await readdir(join(dir, "deliveries"))).filter((n) => !n.endsWith(".json")).length, 0);
  });

  test("a file that cannot be read starts afresh with a warning, and is replaced on the next save", async () => {
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (...args: unknown[]) => warnings.push(String(args.at(-1))),
    };
    const open = deliveryFiles(dir, logger);
    const first = await DeliveryFile.open(dir, "broken", "p", silentLogger);
    first.set("a.gcode", record(1));
    await first.save();
    await writeFile(first.path, '{"format": 1, "sync": "broken", "tar');
    const afresh = await open("broken", "p");
    assert.equal(afresh.get("a.gcode"), undefined);
    assert.match(warnings.join("\n"), /cannot be read; starting afresh/);
    afresh.set("b.gcode", record(2));
    await afresh.save();
    assert.deepEqual((await open("broken", "p")).get("b.gcode"), record(2));
  });

  test("a save cut short by a crash leaves a temp file that the next open clears", async () => {
    const records = await DeliveryFile.open(dir, "crashed", "p", silentLogger);
    records.set("a.gcode", record(1));
    await records.save();
    await writeFile(`${records.path}.0123456789ab.tmp`, '{"format": 1, "sy');
    const reopened = await DeliveryFile.open(dir, "crashed", "p", silentLogger);
    assert.deepEqual(reopened.get("a.gcode"), record(1));
    assert.deepEqual(
      (await readdir(join(dir, "deliveries"))).filter((n) => n.endsWith(".tmp")),
      [],
    );
  });
});
