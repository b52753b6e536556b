/**
 * Kysely over one better-sqlite3 connection, as Ferry's SQLite stores use it: IMMEDIATE
 * transactions, a first-come lock on the connection, and compiled queries run at once when the
 * connection is free (`runNow`, for prepared.ts).
 */
import {
  CompiledQuery,
  Kysely,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type QueryResult,
  type SqliteDatabase,
  type SqliteDialectConfig,
} from "kysely";
import type { Schema } from "./schema.ts";

/** The drivers of SQLite stores, by their Kysely instance (for runNow). */
const sqliteDrivers = new WeakMap<Kysely<Schema>, ImmediateSqliteDriver>();

export function sqliteKysely(database: SqliteDatabase): Kysely<Schema> {
  const dialect = new ImmediateSqliteDialect({ database });
  const db = new Kysely<Schema>({ dialect });
  if (dialect.driver) sqliteDrivers.set(db, dialect.driver);
  return db;
}

/**
 * A compiled query run at once when `db` is a SQLite store's (not a transaction's) and nobody holds
 * its connection; undefined when it must go through Kysely (`db.executeQuery`) instead.
 */
export function runNow<R>(db: Kysely<Schema>, query: CompiledQuery): QueryResult<R> | undefined {
  return sqliteDrivers.get(db)?.runNow(query) as QueryResult<R> | undefined;
}

/**
 * SQLite transactions that take the write lock when they begin. A deferred transaction that reads
 * and then writes fails at once (SQLITE_BUSY, no waiting) when another process wrote in between;
 * an IMMEDIATE one waits its turn (busy_timeout) and then sees the latest data.
 *
 * The one connection goes to one caller at a time (a transaction holds it across its awaits), in
 * the order they asked: a release wakes the next waiter only. Kysely's own lock for single-
 * connection dialects wakes every waiter at each release and all but one wait again, so a
 * thousand farm workers querying at once cost a million wake-ups, and their promises live long
 * enough to reach the old generation.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #database: SqliteDatabase;
  readonly #waiting: (() => void)[] = [];
  #held = false;
  #destroyed = false;

  constructor(config: SqliteDialectConfig & { database: SqliteDatabase }) {
    super(config);
    this.#database = config.database;
  }

  /**
   * Runs a query at once, without Kysely's chain of promises, when nobody holds the connection
   * (then nobody waits for it either, and no transaction is open on it); undefined otherwise.
   * better-sqlite3 runs it synchronously, so nothing can come in between.
   */
  runNow(query: CompiledQuery): QueryResult<unknown> | undefined {
    if (this.#held || this.#destroyed) return undefined;
    const statement = this.#database.prepare(query.sql);
    if (statement.reader) return { rows: statement.all(query.parameters) };
    // What Kysely's SqliteConnection answers for a statement that returns no rows.
    const { changes, lastInsertRowid } = statement.run(query.parameters);
    return { insertId: BigInt(lastInsertRowid), numAffectedRows: BigInt(changes), rows: [] };
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    await super.destroy();
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#held) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#held = true;
    return super.acquireConnection();
  }

  override releaseConnection(): Promise<void> {
    // Handed over still held: nobody can slip in between this release and the next waiter's turn.
    const next = this.#waiting.shift();
    if (next) next();
    else this.#held = false;
    return Promise.resolve();
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
}

/** Tells Kysely to leave the connection's lock to ImmediateSqliteDriver. */
class SelfLockingSqliteAdapter extends SqliteAdapter {
  override get supportsMultipleConnections(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig & { database: SqliteDatabase };
  driver: ImmediateSqliteDriver | undefined;

  constructor(config: SqliteDialectConfig & { database: SqliteDatabase }) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return (this.driver = new ImmediateSqliteDriver(this.#config));
  }

  override createAdapter(): DialectAdapter {
    return new SelfLockingSqliteAdapter();
  }
}
