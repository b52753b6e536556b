import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { sql, type KyselyPlugin } from "kysely";
import { testPostgres } from "../../test/servers/postgres.ts";
import type { Logger } from "../core/logger.ts";
import { silentLogger } from "../core/logger.ts";
import { deliveryRecord, storeDeliveries, type DeliveryRecord } from "./deliveries.ts";
import { openStore } from "./store.ts";
import { dialects } from "./test-support.ts";

const pg = await testPostgres();
after(() => pg.close());

const record = (size: number, hash?: string): DeliveryRecord =>
  deliveryRecord(
    { size, modTime: 1_700_000_000_000, ...(hash ? { hash: { kind: "sha256", value: hash } } : {}) },
    { size, modTime: 1_700_000_000_500 },
  );

/** A records file as Ferry 0.1 wrote it into data_dir/deliveries. */
const legacyFile = (sync: string, target: string, records: Record<string, unknown>) =>
  JSON.stringify({ format: 1, sync, target, records });

for (const dialect of dialects(pg)) {
  describe(`delivery records on ${dialect.label}`, () => {
    after(() => dialect.cleanup());

    test(
      "survive a reopen of the store, one set per target of a sync, digests included",
      dialect.testOptions,
      async () => {
        const options = await dialect.fresh();
        const store = await openStore(options);
        const open = storeDeliveries(store);
        const a = await open("gcode", "mk4-a");
        a.set("x.gcode", record(10, "ab".repeat(32)));
        a.set("y.gcode", record(20));
        await Promise.all([a.save(), a.save()]);
        a.delete("y.gcode");
        a.delete("never-there.gcode");
        await a.save();
        const b = await open("gcode", "mk4-b");
        b.set("x.gcode", record(30));
        await b.save();
        await store.close();

        const reopened = storeDeliveries(await dialect.open(options));
        const again = await reopened("gcode", "mk4-a");
        assert.deepEqual(again.get("x.gcode"), record(10, "ab".repeat(32)));
        assert.equal(again.get("y.gcode"), undefined);
        assert.deepEqual([...again.keys()], ["x.gcode"]);
        assert.deepEqual((await reopened("gcode", "mk4-b")).get("x.gcode"), record(30));
        assert.deepEqual([...(await reopened("other", "mk4-a")).keys()], []);
      },
    );

    test("a save writes only the keys changed since the last one", dialect.testOptions, async () => {
      const store = await dialect.open();
      const records = await storeDeliveries(store)("gcode", "p");
      records.set("a.gcode", record(1));
      await records.save();
      // Someone else's newer row for a.gcode: a save that rewrote every key would undo it.
      await store.db
        .updateTable("deliveries")
        .set({ target_size: 999 })
        .where("key", "=", "a.gcode")
        .execute();
      records.set("b.gcode", record(2));
      await records.save();
      await records.save();
      const rows = await store.db
        .selectFrom("deliveries")
        .select(["key", "target_size"])
        .orderBy("key")
        .execute();
      assert.deepEqual(rows, [
        { key: "a.gcode", target_size: 999 },
        { key: "b.gcode", target_size: 2 },
      ]);
    });

    test("a save that fails is made good by the next one", dialect.testOptions, async () => {
      const store = await dialect.open();
      const records = await storeDeliveries(store)("gcode", "p");
      records.set("a.gcode", record(1));
      await sql`alter table deliveries rename to deliveries_away`.execute(store.db);
      await assert.rejects(records.save());
      await sql`alter table deliveries_away rename to deliveries`.execute(store.db);
      records.set("b.gcode", record(2));
      await records.save();
      const reread = await storeDeliveries(store)("gcode", "p");
      assert.deepEqual([...reread.keys()].sort(), ["a.gcode", "b.gcode"]);
    });

    test(
      "deliveries finishing together share one transaction; each save resolves once its record is committed",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        // Statements that wrote rows, as run (a compiled statement does not go through transformQuery).
        let inserts = 0;
        const counting: KyselyPlugin = {
          transformQuery: (args) => args.node,
          transformResult: (args) => {
            if (args.result.numAffectedRows !== undefined) inserts++;
            return Promise.resolve(args.result);
          },
        };
        const records = await storeDeliveries({ ...store, db: store.db.withPlugin(counting) })("batch", "p");
        // Four transfers ending one after another, each in its own turn of the microtask queue.
        const saves: Promise<void>[] = [];
        for (let i = 0; i < 4; i++) {
          records.set(`f${i}.gcode`, record(i));
          saves.push(records.save());
          await Promise.resolve();
        }
        assert.equal(inserts, 0, "nothing written before the turn ends");
        await saves[0];
        assert.equal(inserts, 1, "one insert for the four records");
        const committed = await storeDeliveries(store)("batch", "p");
        assert.deepEqual([...committed.keys()].sort(), ["f0.gcode", "f1.gcode", "f2.gcode", "f3.gcode"]);
        await Promise.all(saves);
        // A record set while a write runs waits for the next one, and is committed before its save resolves.
        records.set("late.gcode", record(9));
        const late = records.save();
        const first = records.save();
        assert.equal(late, first, "saves asked for together join one write");
        await late;
        assert.equal(inserts, 2);
        assert.ok((await storeDeliveries(store)("batch", "p")).get("late.gcode"));
      },
    );

    test("many records at once are saved in chunks", dialect.testOptions, async () => {
      const store = await dialect.open();
      const records = await storeDeliveries(store)("bulk", "p");
      for (let i = 0; i < 1234; i++) records.set(`f${i}.gcode`, record(i));
      await records.save();
      for (let i = 0; i < 1000; i++) records.delete(`f${i}.gcode`);
      await records.save();
      assert.equal([...(await storeDeliveries(store)("bulk", "p")).keys()].length, 234);
    });

    test(
      "the JSON files of Ferry 0.1 are imported on first open and deleted",
      dialect.testOptions,
      async () => {
        const options = await dialect.fresh();
        // A newer row already in the database for one of the files' keys: it wins over the file.
        const before = await openStore(options);
        const existing = await storeDeliveries(before)("gcode", "mk4-a");
        existing.set("kept.gcode", record(7));
        await existing.save();
        await before.close();

        const folder = join(options.dataDir, "deliveries");
        await mkdir(folder, { recursive: true });
        const old = { source: { size: 5, modTime: 100 }, target: { size: 5, modTime: 200 } };
        await writeFile(
          join(folder, "0123456789abcdef01234567.json"),
          legacyFile("gcode", "mk4-a", { "a.gcode": old, "kept.gcode": old, "bad.gcode": { source: "?" } }),
        );
        await writeFile(
          join(folder, "fedcba9876543210fedcba98.json"),
          legacyFile("gcode", "mk4-b", { "b.gcode": old }),
        );
        await writeFile(join(folder, "0123456789abcdef01234567.json.a1b2c3d4e5f6.tmp"), '{"format": 1, "sy');
        await writeFile(join(folder, "ffffffffffffffffffffffff.json"), '{"format": 1, "sync": "gcode", "tar');
        const warnings: string[] = [];
        const logger: Logger = {
          ...silentLogger,
          warn: (...args: unknown[]) => warnings.push(String(args.at(-1))),
        };

        const store = await openStore({ ...options, logger });
        await store.close();
        const opened = await dialect.open(options);
        const open = storeDeliveries(opened);
        const a = await open("gcode", "mk4-a");
        assert.deepEqual(a.get("a.gcode"), old);
        assert.deepEqual(a.get("kept.gcode"), record(7), "the database's own row is newer");
        assert.equal(a.get("bad.gcode"), undefined, "an invalid record is left out");
        assert.deepEqual((await open("gcode", "mk4-b")).get("b.gcode"), old);
        await assert.rejects(readdir(folder), { code: "ENOENT" }, "the folder is gone with its files");
        assert.match(warnings.join("\n"), /not valid; dropped/);
      },
    );
  });
}
