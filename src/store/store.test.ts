import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { Migrator } from "kysely/migration";
import { testPostgres } from "../../test/servers/postgres.ts";
import { migrationNames, migrationProvider } from "./migrations.ts";
import type { Schema } from "./schema.ts";
import { openStore, redactUrl, type Store } from "./store.ts";
import { dialects, sqliteDialect } from "./test-support.ts";

const run = promisify(execFile);
const pg = await testPostgres();
after(() => pg.close());

const migrated = async (store: Store) =>
  (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db)).rows.map(
    (r) => r.name,
  );

for (const dialect of dialects(pg)) {
  describe(`store on ${dialect.label}`, () => {
    after(() => dialect.cleanup());

    test(
      "opens a new database with every migration; opening it again changes nothing",
      dialect.testOptions,
      async () => {
        const options = await dialect.fresh();
        const first = await openStore(options);
        assert.equal(first.dialect, dialect.label);
        assert.deepEqual(await migrated(first), [...migrationNames]);
        await first.db
          .insertInto("device_states")
          .values({ name: "p", state: "online", since: 1_796_000_000_000, detail: null, updated_at: 1 })
          .execute();
        await first.close();
        const second = await openStore(options);
        try {
          assert.deepEqual(await migrated(second), [...migrationNames], "each migration once");
          const row = await second.db.selectFrom("device_states").selectAll().executeTakeFirst();
          // Times are integers in JavaScript on both dialects (PostgreSQL's bigint included).
          assert.equal(row?.since, 1_796_000_000_000);
        } finally {
          await second.close();
        }
      },
    );

    test(
      "six processes opening one new database at the same instant all succeed",
      dialect.testOptions,
      async () => {
        const options = await dialect.fresh();
        // Each process loads the code first, then waits for one shared instant to open the store.
        const script = [
          `import { openStore } from ${JSON.stringify(new URL("./store.ts", import.meta.url).href)};`,
          `const [options, at] = [JSON.parse(process.argv[1]), Number(process.argv[2])];`,
          `await new Promise((resolve) => setTimeout(resolve, at - Date.now()));`,
          `const store = await openStore(options);`,
          `await store.close();`,
          `console.log("opened");`,
        ].join("\n");
        const at = String(Date.now() + 2500);
        const opens = Array.from({ length: 6 }, () =>
          run(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(options), at]),
        );
        for (const { stdout } of await Promise.all(opens)) assert.equal(stdout.trim(), "opened");
        const store = await dialect.open(options);
        assert.deepEqual(await migrated(store), [...migrationNames]);
      },
    );

    test("says where it is, without secrets", dialect.testOptions, async () => {
      const options = await dialect.fresh();
      const store = await dialect.open(options);
      if (dialect.label === "sqlite") {
        assert.equal(store.location, join(options.dataDir, "ferry.db"));
        assert.ok((await stat(store.location)).isFile());
      } else {
        assert.equal(store.location, redactUrl(options.databaseUrl ?? ""));
      }
    });
  });
}

describe("store: opening", () => {
  const sqlite = sqliteDialect();
  after(() => sqlite.cleanup());

  test("SQLite runs in WAL mode with a busy timeout and foreign keys", async () => {
    const store = await sqlite.open();
    const pragma = async (name: string) =>
      Object.values(
        (await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(store.db)).rows[0] ?? {},
      )[0];
    assert.equal(await pragma("journal_mode"), "wal");
    assert.equal(await pragma("foreign_keys"), 1);
    assert.ok(Number(await pragma("busy_timeout")) >= 5000);
  });

  test("a database URL's password appears in no message", async () => {
    const url = "postgres://ferry:s3cret-pw@127.0.0.1:1/ferry";
    assert.equal(redactUrl(url), "postgres://ferry:***@127.0.0.1:1/ferry");
    await assert.rejects(openStore({ dataDir: "/nonexistent", databaseUrl: url }), (error: Error) => {
      assert.match(error.message, /postgres:\/\/ferry:\*\*\*@127\.0\.0\.1:1\/ferry/);
      assert.doesNotMatch(error.message + String(error.stack), /s3cret/);
      return true;
    });
    await assert.rejects(
      openStore({ dataDir: "/x", databaseUrl: "postgres://a:s3cret@[bad" }),
      (error: Error) => {
        assert.doesNotMatch(error.message, /s3cret/);
        assert.match(error.message, /not a valid URL/);
        return true;
      },
    );
  });

  test("a URL of another database is refused, naming what it got", async () => {
    await assert.rejects(
      openStore({ dataDir: "/x", databaseUrl: "mysql://u:pw@host/db" }),
      /must be a postgres:\/\/ or postgresql:\/\/ URL, not mysql:\/\/ \(mysql:\/\/u:\*\*\*@host\/db\)/,
    );
  });

  test("a data folder that cannot be made is an error naming the database file", async () => {
    const { dataDir } = await sqlite.fresh();
    await writeFile(join(dataDir, "file"), "not a folder");
    const inside = join(dataDir, "file", "data");
    await assert.rejects(openStore({ dataDir: inside }), (error: Error) => {
      assert.match(error.message, new RegExp(`cannot open the SQLite database ${join(inside, "ferry.db")}`));
      return true;
    });
  });
});

test("migration 0011: sync task keys joined by NUL become JSON arrays of the same parts", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "ferry-task-keys-"));
  try {
    const database = new Database(join(dataDir, "ferry.db"));
    const old = new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
    const { error } = await new Migrator({ db: old, provider: migrationProvider }).migrateTo(
      "0010_farm_heating",
    );
    assert.equal(error, undefined);
    const row = {
      kind: "sync.file",
      queue: "to:mk4-a#0",
      payload: "{}",
      priority: 0,
      run_at: 1,
      attempts: 0,
      max_attempts: 10,
      status: "queued" as const,
      created_at: 1,
      updated_at: 1,
    };
    await old
      .insertInto("tasks")
      .values([
        { ...row, id: "a", key: "file\u0000gcode\u0000mk4-a\u0000Привет/a b.gcode" },
        { ...row, id: "b", key: "already-plain" },
      ])
      .execute();
    await old.destroy();

    const store = await openStore({ dataDir });
    try {
      const keys = await store.db.selectFrom("tasks").select(["id", "key"]).orderBy("id").execute();
      assert.deepEqual(keys, [
        { id: "a", key: JSON.stringify(["file", "gcode", "mk4-a", "Привет/a b.gcode"]) },
        { id: "b", key: "already-plain" },
      ]);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
