/**
 * The durable store (DESIGN.md §3, §6): one Kysely database, SQLite in the data folder by default,
 * PostgreSQL when a `postgres://` URL is given (several nodes sharing one queue). Migrations run on
 * open, under a lock, so any number of processes may open the same database at once.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  Kysely,
  PostgresDialect,
  sql,
  type PostgresPool,
  type PostgresPoolClient,
  type SqliteDatabase,
  type SqliteStatement,
} from "kysely";
import { Migrator } from "kysely/migration";
import type pg from "pg";
import { FerryError } from "../core/errors.ts";
import { silentLogger, type Logger } from "../core/logger.ts";
import { explainCorruption, explainingStatement, isCorruption, StoreCorruptError } from "./corrupt.ts";
import { importDeliveryFiles } from "./deliveries.ts";
import type { Store } from "./handle.ts";
import { migrationProvider } from "./migrations.ts";
import { sqliteKysely } from "./sqlite-kysely.ts";
import type { Schema } from "./schema.ts";

export type { Store } from "./handle.ts";

export interface StoreOptions {
  /** The data folder: holds `ferry.db` (SQLite); delivery files of older versions are imported from it. */
  dataDir: string;
  /** `postgres://` or `postgresql://` URL; unset or empty: SQLite in `dataDir`. */
  databaseUrl?: string | undefined;
  logger?: Logger;
}

/** How long a SQLite writer waits for another process's write transaction before giving up. */
const SQLITE_BUSY_TIMEOUT_MS = 10_000;
const STATEMENT_CACHE_SIZE = 256;
/** Distinct statements a PostgreSQL connection keeps prepared, at most. */
const NAMED_STATEMENTS = 100;
/** PostgreSQL int8 (bigint, count(*)): times and sizes in ms and bytes fit a double exactly. */
const PG_INT8 = 20;
/** Key of the session advisory lock migrations run under (any constant unique to Ferry). */
const PG_MIGRATION_LOCK = 0x6665_7272; // "ferr"

export async function openStore(options: StoreOptions): Promise<Store> {
  const logger = options.logger ?? silentLogger;
  const url = options.databaseUrl?.trim();
  const store = url ? await openPostgres(url, logger) : await openSqlite(options.dataDir);
  try {
    await migrate(store);
    await importDeliveryFiles(store, options.dataDir, logger);
  } catch (error) {
    await store.close().catch(() => undefined);
    if (error instanceof FerryError) throw error;
    throw new FerryError("UNAVAILABLE", `cannot open the store ${store.location}: ${messageOf(error)}`, {
      cause: error,
      subject: store.location,
    });
  }
  logger.debug({ store: store.location }, "store open");
  return store;
}

/**
 * A store that lives in memory and dies with the process: the queue of a one-shot `ferry sync`,
 * whose tasks must not outlive the run, and tests.
 */
export async function openMemoryStore(): Promise<Store> {
  const database = new Database(":memory:");
  const db = sqliteKysely(cachingStatements(database, "(memory)"));
  const store: Store = { db, dialect: "sqlite", location: "(memory)", close: () => db.destroy() };
  await migrate(store);
  return store;
}

/** A URL fit to show: the password replaced by ***. Never echoes a URL it cannot parse. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(an unparsable database URL)";
  }
}

async function openSqlite(dataDir: string): Promise<Store> {
  const file = join(dataDir, "ferry.db");
  let database: Database.Database | undefined;
  try {
    await mkdir(dataDir, { recursive: true });
    database = new Database(file);
    database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    await enableWal(database);
    // WAL + NORMAL: a power cut may undo the last commits, never corrupt the file; a task finished
    // just before it runs again (tasks are idempotent; transfers verify what is on the target).
    database.pragma("synchronous = NORMAL");
    database.pragma("foreign_keys = ON");
  } catch (error) {
    database?.close();
    if (isCorruption(error)) throw new StoreCorruptError(file, error);
    throw new FerryError("UNAVAILABLE", `cannot open the SQLite database ${file}: ${messageOf(error)}`, {
      cause: error,
      subject: file,
      retryable: false,
    });
  }
  const db = sqliteKysely(cachingStatements(database, file));
  return { db, dialect: "sqlite", location: file, close: () => db.destroy() };
}

/**
 * WAL is kept in the file, so only a new database needs switching. The switch takes the file's
 * exclusive lock and SQLite answers SQLITE_BUSY at once, without its busy timeout, while another
 * process opening the new file at the same moment holds it: wait and try again.
 */
async function enableWal(database: Database.Database): Promise<void> {
  const deadline = Date.now() + SQLITE_BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      const mode: unknown = database.pragma("journal_mode = WAL", { simple: true });
      if (mode === "wal") return;
      throw new Error(
        `SQLite keeps journal mode "${String(mode)}" instead of WAL (a network or read-only file system?)`,
      );
    } catch (error) {
      if ((error as { code?: unknown }).code !== "SQLITE_BUSY" || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
    }
  }
}

async function openPostgres(url: string, logger: Logger): Promise<Store> {
  const location = redactUrl(url);
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new FerryError(
      "UNAVAILABLE",
      "DATABASE_URL is not a valid URL (postgres://user:password@host/db)",
      {
        retryable: false,
      },
    );
  }
  if (protocol !== "postgres:" && protocol !== "postgresql:") {
    throw new FerryError(
      "UNAVAILABLE",
      `DATABASE_URL must be a postgres:// or postgresql:// URL, not ${protocol}// (${location})`,
      { retryable: false, subject: location },
    );
  }
  // Loaded only here: a farm on SQLite never pays for the PostgreSQL client's memory.
  const { default: pgModule } = await import("pg");
  const types = new pgModule.TypeOverrides();
  types.setTypeParser(PG_INT8, Number);
  const pool = new pgModule.Pool({
    connectionString: url,
    types,
    application_name: "ferry",
    max: 10,
    // An unreachable server is an error after a while, not a hang until TCP gives up.
    connectionTimeoutMillis: 15_000,
  });
  // An idle connection that breaks (server restart) must not crash the process; the next query reconnects.
  pool.on("error", (error) => {
    logger.warn({ store: location, err: error.message }, "an idle PostgreSQL connection failed");
  });
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: namedStatements(pool) }) });
  return { db, dialect: "postgres", location, close: () => db.destroy() };
}

/**
 * Runs the pending migrations with every other opener locked out: SQLite in one IMMEDIATE
 * transaction (SQLite's DDL is transactional, so a failed migration leaves nothing behind),
 * PostgreSQL under a session advisory lock (Kysely adds a transaction per migration).
 */
async function migrate(store: Store): Promise<void> {
  await store.db.connection().execute(async (conn) => {
    const run = async () => {
      const { error } = await new Migrator({ db: conn, provider: migrationProvider }).migrateToLatest();
      if (error !== undefined) throw error instanceof Error ? error : new Error(messageOf(error));
    };
    if (store.dialect === "sqlite") {
      await sql`begin immediate`.execute(conn);
      try {
        await run();
        await sql`commit`.execute(conn);
      } catch (error) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw error;
      }
    } else {
      await sql`select pg_advisory_lock(${PG_MIGRATION_LOCK})`.execute(conn);
      try {
        await run();
      } finally {
        await sql`select pg_advisory_unlock(${PG_MIGRATION_LOCK})`.execute(conn);
      }
    }
  });
}

/**
 * Kysely prepares every statement anew; preparing costs as much as running a small one. The queue
 * runs the same few statements over and over, so they are kept (better-sqlite3 statements can be
 * run again; Ferry never streams, which would hold one busy).
 */
function cachingStatements(database: Database.Database, file: string): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare: (text) => {
      let statement = statements.get(text);
      if (!statement) {
        // Statements with `in (...)` lists vary in length; a full cache starts over rather than grow.
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear();
        try {
          statement = explainingStatement(database.prepare(text), file);
        } catch (error) {
          throw explainCorruption(error, file);
        }
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * Planning costs PostgreSQL more than running the queue's small statements (a claim: 0.3 ms to
 * plan, 0.06 ms to run). Kysely sends every statement unnamed, so it is planned every time; this
 * pool names a statement once its text has come three times, and PostgreSQL keeps it per
 * connection (about 40 % more tasks per second). Few distinct texts are named, so this stays small.
 * Queries name their columns (no `select *`), so a column added by a newer node's migration cannot
 * change a prepared statement's result.
 */
function namedStatements(pool: pg.Pool): PostgresPool {
  const seen = new Map<string, number>();
  const names = new Map<string, string>();
  const nameOf = (text: string): string | undefined => {
    const known = names.get(text);
    if (known !== undefined || names.size >= NAMED_STATEMENTS) return known;
    const count = (seen.get(text) ?? 0) + 1;
    if (count < 3) {
      if (seen.size < 4 * NAMED_STATEMENTS) seen.set(text, count);
      return undefined;
    }
    seen.delete(text);
    const name = `ferry_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
    names.set(text, name);
    return name;
  };
  return {
    options: pool.options,
    end: () => pool.end(),
    connect: async () => {
      const client = await pool.connect();
      return {
        release: (destroy?: boolean) => {
          client.release(destroy);
        },
        // The overloads of PostgresPoolClient.query (text + parameters, or a cursor) in one function.
        query: ((textOrCursor: string | object, parameters?: readonly unknown[]) => {
          if (typeof textOrCursor !== "string") return client.query(textOrCursor as pg.Submittable);
          const name = nameOf(textOrCursor);
          const values = parameters ? [...parameters] : [];
          return name === undefined
            ? client.query(textOrCursor, values)
            : client.query({ name, text: textOrCursor, values });
        }) as unknown as PostgresPoolClient["query"],
      };
    },
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
