import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { testPostgres } from "../../test/servers/postgres.ts";
import { prepare } from "./prepared.ts";
import { dialects } from "./test-support.ts";

const pg = await testPostgres();
after(() => pg.close());

const row = (printer: string, holder: string | null, until: number | null) => ({
  printer,
  bed_clear: 0,
  lease_holder: holder,
  lease_until: until,
  heating: 0,
  updated_at: 1,
});

for (const dialect of dialects(pg)) {
  describe(`prepared queries on ${dialect.label}`, () => {
    after(() => dialect.cleanup());

    test(
      "run again with each call's arguments, beside the query's own constants",
      dialect.testOptions,
      async () => {
        const { db } = await dialect.open();
        await db
          .insertInto("printer_farm_state")
          .values([row("mk4-a", "node-a", 100), row("mk4-b", "node-b", 200), row("mk4-c", "node-a", 300)])
          .execute();
        const held = prepare((d, holder: string, after: number) =>
          d
            .selectFrom("printer_farm_state")
            .select("printer")
            .where("lease_holder", "=", holder)
            .where("lease_until", ">", after)
            .where("printer", "in", ["mk4-a", "mk4-b"])
            .orderBy("printer"),
        );
        assert.deepEqual((await held(db, "node-a", 0)).rows, [{ printer: "mk4-a" }]);
        assert.deepEqual((await held(db, "node-b", 0)).rows, [{ printer: "mk4-b" }]);
        assert.deepEqual((await held(db, "node-b", 200)).rows, []);

        const release = prepare((d, holder: string) =>
          d.updateTable("printer_farm_state").set({ lease_holder: null }).where("lease_holder", "=", holder),
        );
        assert.equal(Number((await release(db, "node-a")).numAffectedRows), 2);
        assert.equal(Number((await release(db, "node-a")).numAffectedRows), 0);
      },
    );

    test(
      "compiled once for a store and its transactions, run on the transaction's connection",
      dialect.testOptions,
      async () => {
        const { db } = await dialect.open();
        let builds = 0;
        const holderOf = prepare((d, printer: string) => {
          builds++;
          return d.selectFrom("printer_farm_state").select("lease_holder").where("printer", "=", printer);
        });
        await db
          .insertInto("printer_farm_state")
          .values(row("mk4-t", "node-a", 1))
          .execute();
        assert.deepEqual((await holderOf(db, "mk4-t")).rows, [{ lease_holder: "node-a" }]);
        await db.transaction().execute(async (trx) => {
          await trx
            .updateTable("printer_farm_state")
            .set({ lease_holder: "node-b" })
            .where("printer", "=", "mk4-t")
            .execute();
          // Its own uncommitted change: the query runs inside the transaction.
          assert.deepEqual((await holderOf(trx, "mk4-t")).rows, [{ lease_holder: "node-b" }]);
        });
        await db.transaction().execute(async (trx) => {
          assert.deepEqual((await holderOf(trx, "mk4-t")).rows, [{ lease_holder: "node-b" }]);
        });
        assert.equal(builds, 1);
      },
    );

    test(
      "wait for a transaction that holds the connection and see what it committed, not what it undid",
      dialect.testOptions,
      async () => {
        const { db } = await dialect.open();
        const count = prepare((d, printer: string) =>
          d
            .selectFrom("printer_farm_state")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .where("printer", "=", printer),
        );
        let counted: Promise<number> | undefined;
        await db
          .transaction()
          .execute(async (trx) => {
            await trx
              .insertInto("printer_farm_state")
              .values(row("mk4-a", null, null))
              .execute();
            // Asked while the transaction runs, outside it.
            counted = count(db, "mk4-a").then(({ rows }) => Number(rows[0]?.n));
            // A turn of the event loop for the query to (wrongly) run meanwhile.
            await new Promise((resolve) => setImmediate(resolve));
            throw new Error("undo");
          })
          .catch(() => undefined);
        assert.equal(await counted, 0);
        await db
          .insertInto("printer_farm_state")
          .values(row("mk4-a", null, null))
          .execute();
        assert.equal(Number((await count(db, "mk4-a")).rows[0]?.n), 1);
      },
    );

    test("an argument that is not a bound parameter is refused", dialect.testOptions, async () => {
      const { db } = await dialect.open();
      const unused = prepare((d, _printer: string) => d.selectFrom("printer_farm_state").select("printer"));
      await assert.rejects(unused(db, "mk4-a"), /argument 0 is not a parameter/);
    });
  });
}
