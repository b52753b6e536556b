/**
 * `ferry store check` and `ferry store reset` on a real ferry.db with garbage written over its
 * pages, through the `ferry` command as a user runs it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import { testPostgres } from "../../test/servers/postgres.ts";
import { DeviceStates } from "../store/devices.ts";
import { openStore } from "../store/store.ts";
import { acquireRunLock } from "./run-lock.ts";

const cli = new URL("../../bin/ferry.js", import.meta.url).pathname;
const pg = await testPostgres();
let dir: string;
let dataDir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-store-command-"));
  dataDir = join(dir, "data");
  await mkdir(join(dir, "in"));
  await writeFile(
    join(dir, "ferry.yaml"),
    "data_dir: ./data\nsyncs:\n  s: { source: ./in, targets: [./out], mode: copy }\n",
  );
});
after(async () => {
  await pg.close();
  await rm(dir, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function ferry(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [cli, ...args],
      { cwd: dir, env: { ...process.env, DATABASE_URL: "", ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

/** A store with a thousand device states, then garbage over most of that table's pages. */
async function damagedStore(): Promise<string> {
  const store = await openStore({ dataDir });
  const states = new DeviceStates(store);
  for (let i = 0; i < 1000; i++) await states.set(`printer-${i}`, "online", "y".repeat(150));
  await store.close();
  const file = join(dataDir, "ferry.db");
  // Where the table lies in the file, from SQLite itself (it moves as migrations add tables).
  const database = new Database(file, { readonly: true });
  const pages = (
    database.prepare("select pageno from dbstat where name = 'device_states' order by pageno").all() as {
      pageno: number;
    }[]
  ).map((row) => row.pageno);
  database.close();
  assert.ok(pages.length > 20, `device_states has ${pages.length} pages`);
  const handle = await open(file, "r+");
  // Pages are numbered from 1; the table's root page is left whole, its leaves are not.
  for (const page of pages.slice(5, 16))
    await handle.write(Buffer.alloc(4096, 0xa5), 0, 4096, (page - 1) * 4096);
  await handle.close();
  return file;
}

test("a damaged store: check says so (exit 1), reset asks, refuses while serve runs, then sets it aside", async () => {
  const file = await damagedStore();
  const size = (await stat(file)).size;

  const checked = await ferry(["store", "check"]);
  assert.equal(checked.code, 1, checked.stderr);
  assert.match(checked.stderr, /ferry\.db: damaged \(integrity_check\):/);
  assert.match(checked.stderr, /delivery records: what Ferry sent where/);
  assert.match(checked.stderr, /`ferry store reset`/);
  assert.equal((await ferry(["store", "check", "--quick"])).code, 1);

  // What a user meets first: a status that reads the damaged table.
  const status = await ferry(["status"]);
  assert.equal(status.code, 1);
  assert.match(
    status.stderr,
    /the store .*ferry\.db is damaged \(SQLite: database disk image is malformed\)/,
  );
  assert.match(status.stderr, /the task queue: changes waiting to be sent, with their checkpoints/);

  const unasked = await ferry(["store", "reset"]);
  assert.equal(unasked.code, 2, unasked.stderr);
  assert.match(unasked.stderr, /pass --yes/);
  assert.equal((await stat(file)).size, size, "nothing moved without a yes");

  const lock = await acquireRunLock(dataDir, "serve");
  try {
    const locked = await ferry(["store", "reset", "--yes"]);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /another ferry serve \(pid \d+/);
    assert.equal((await stat(file)).size, size, "nothing moved while serve runs");
  } finally {
    await lock.release();
  }

  const reset = await ferry(["store", "reset", "--yes"]);
  assert.equal(reset.code, 0, reset.stderr);
  const aside = (await readdir(dataDir)).filter((name) => name.startsWith("ferry.db.corrupt-"));
  assert.equal(aside.length, 1, `set aside: ${aside.join(", ")}`);
  assert.equal((await stat(join(dataDir, aside[0] ?? ""))).size, size, "kept whole, not deleted");
  assert.match(reset.stdout, /moved ferry\.db\.corrupt-\S+ aside/);

  const fresh = await ferry(["store", "check"]);
  assert.equal(fresh.code, 0);
  assert.match(fresh.stdout, /no store yet/);
  assert.equal((await ferry(["status"])).code, 0, "a fresh store is created on the next run");
  assert.equal((await ferry(["store", "check"])).code, 0);
});

test("PostgreSQL: reset refuses without showing the password; check reads the migrations", async (t) => {
  const refused = await ferry(["store", "reset", "--yes"], {
    DATABASE_URL: "postgres://ferry:sup3rsecret@127.0.0.1:1/farm",
  });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /postgres:\/\/ferry:\*\*\*@127\.0\.0\.1:1\/farm.*other nodes may share/);
  assert.doesNotMatch(refused.stderr, /sup3rsecret/);

  const unreachable = await ferry(["store", "check"], {
    DATABASE_URL: "postgres://ferry:x@127.0.0.1:1/farm",
  });
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot check the PostgreSQL store/);

  if (pg.testOptions.skip !== undefined) {
    t.skip(pg.testOptions.skip);
    return;
  }
  const url = await pg.database();
  const empty = await ferry(["store", "check"], { DATABASE_URL: url });
  assert.equal(empty.code, 0);
  assert.match(empty.stdout, /no Ferry store in this database yet/);
  await (await openStore({ dataDir, databaseUrl: url })).close();
  const checked = await ferry(["store", "check"], { DATABASE_URL: url });
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /ok: \d+ migrations applied/);
});
