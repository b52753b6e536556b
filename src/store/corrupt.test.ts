/**
 * A damaged ferry.db: a real store filled with rows, then garbage written over some of its pages,
 * the way a failing disk or a careless copy leaves one.
 */
import assert from "node:assert/strict";
import { open, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { after, describe, test } from "node:test";
import { checkStore } from "./check.ts";
import { StoreCorruptError } from "./corrupt.ts";
import { DeviceStates } from "./devices.ts";
import { setStoreAside } from "./set-aside.ts";
import { openStore } from "./store.ts";
import { sqliteDialect } from "./test-support.ts";

const sqlite = sqliteDialect();
after(() => sqlite.cleanup());

const PAGE = 4096;

/** A closed store whose device_states fill about a hundred pages after the schema's few. */
async function filledStore(): Promise<{ dataDir: string; file: string; pages: number }> {
  const options = await sqlite.fresh();
  const store = await openStore(options);
  const states = new DeviceStates(store);
  for (let i = 0; i < 2000; i++) await states.set(`printer-${i}`, "offline", "x".repeat(150));
  await store.close();
  const file = join(options.dataDir, "ferry.db");
  const { size } = await stat(file);
  assert.equal(size % PAGE, 0, "SQLite's default page size");
  return { dataDir: options.dataDir, file, pages: size / PAGE };
}

/**
 * Ten pages of device_states (1-based, as SQLite counts them), from SQLite itself: where the
 * table lies moves as migrations add tables.
 */
function statePages(file: string): number[] {
  const database = new Database(file, { readonly: true });
  try {
    const rows = database
      .prepare("select pageno from dbstat where name = 'device_states' order by pageno")
      .all() as { pageno: number }[];
    assert.ok(rows.length > 30, `device_states spans ${rows.length} pages`);
    return rows.slice(10, 20).map((row) => row.pageno);
  } finally {
    database.close();
  }
}

/** Writes garbage over pages `first`..`last` (1-based, as SQLite counts them). */
async function garble(file: string, first: number, last: number): Promise<void> {
  const handle = await open(file, "r+");
  try {
    const garbage = Buffer.alloc(PAGE * (last - first + 1));
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) % 251;
    await handle.write(garbage, 0, garbage.length, (first - 1) * PAGE);
  } finally {
    await handle.close();
  }
}

function assertExplained(error: unknown, file: string): true {
  assert.ok(error instanceof StoreCorruptError, `expected StoreCorruptError, got ${String(error)}`);
  assert.equal(error.subject, file);
  for (const words of [
    file,
    "delivery records: what Ferry sent where, so that unchanged files are not sent again",
    "the task queue: changes waiting to be sent, with their checkpoints",
    "device states",
    "Starting over loses",
    "`ferry store check`",
    "`ferry store reset`",
    "never deleted",
  ]) {
    assert.ok(error.message.includes(words), `message names "${words}":\n${error.message}`);
  }
  return true;
}

describe("a damaged SQLite store", () => {
  test("garbage over the header: opening says what the file holds and what to run", async () => {
    const { dataDir, file } = await filledStore();
    await garble(file, 1, 1);
    await assert.rejects(openStore({ dataDir }), (error) => assertExplained(error, file));
    const check = await checkStore({ dataDir });
    assert.equal(check.ok, false);
    assert.match(check.findings.join("\n"), /not a database|malformed/);
  });

  test("garbage over a table's pages: the query that meets it says the same", async () => {
    const { dataDir, file, pages } = await filledStore();
    assert.ok(pages > 60, `the table spans many pages (${pages})`);
    for (const page of statePages(file)) await garble(file, page, page);
    const store = await openStore({ dataDir });
    try {
      await assert.rejects(new DeviceStates(store).all(), (error) => assertExplained(error, file));
    } finally {
      await store.close();
    }
    for (const quick of [false, true]) {
      const check = await checkStore({ dataDir, quick });
      assert.equal(check.ok, false, `${quick ? "quick" : "integrity"}_check finds the damage`);
      assert.notDeepEqual(check.findings, ["ok"]);
    }
  });

  test("a whole store checks ok; a missing one is ok and is not created", async () => {
    const { dataDir } = await filledStore();
    assert.deepEqual(await checkStore({ dataDir }), {
      ok: true,
      location: join(dataDir, "ferry.db"),
      findings: ["ok"],
    });
    const empty = (await sqlite.fresh()).dataDir;
    const check = await checkStore({ dataDir: empty });
    assert.equal(check.ok, true);
    assert.deepEqual(await readdir(empty), []);
  });

  test("set aside: the file and its WAL move together, nothing is deleted, a fresh store opens", async () => {
    const { dataDir, file } = await filledStore();
    await garble(file, 30, 40);
    // What a run killed mid-write leaves next to the file.
    await writeFile(`${file}-wal`, "wal");
    await writeFile(`${file}-shm`, "shm");
    const before = (await stat(file)).size;
    const moved = await setStoreAside(dataDir, new Date("2025-03-04T05:06:07.890Z"));
    const aside = join(dataDir, "ferry.db.corrupt-2025-03-04T05-06-07Z");
    assert.deepEqual(moved, [aside, `${aside}-wal`, `${aside}-shm`]);
    assert.deepEqual((await readdir(dataDir)).sort(), moved.map((m) => m.slice(dataDir.length + 1)).sort());
    assert.equal((await stat(aside)).size, before);
    // A second reset in the same second keeps the first one's files.
    const store = await openStore({ dataDir });
    assert.deepEqual(await new DeviceStates(store).all(), []);
    await store.close();
    const again = await setStoreAside(dataDir, new Date("2025-03-04T05:06:07.000Z"));
    assert.equal(again[0], `${aside}-2`);
    assert.deepEqual(await setStoreAside(dataDir), [], "nothing left to move");
  });
});
