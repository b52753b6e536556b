/**
 * `ferry store check`: is the store whole? SQLite: PRAGMA integrity_check (or quick_check) on
 * `<dataDir>/ferry.db`, opened without changing it (no migrations, no journal switch). PostgreSQL:
 * connect and read the migrations table.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { isCorruption } from "./corrupt.ts";
import { migrationNames } from "./migrations.ts";
import { redactUrl } from "./store.ts";

export interface StoreCheck {
  /** True when the store is whole (or does not exist yet). */
  ok: boolean;
  /** The database file, or the URL without its password. */
  location: string;
  /** What the check found, one finding a line: "ok", SQLite's messages, or why it could not look. */
  findings: string[];
}

/** SQLite lists this many problems at most; the first few say enough. */
const MAX_FINDINGS = 50;

export async function checkStore(options: {
  dataDir: string;
  databaseUrl?: string | undefined;
  /** quick_check: O(N) instead of O(N log N), skips index/table agreement. */
  quick?: boolean;
}): Promise<StoreCheck> {
  const url = options.databaseUrl?.trim();
  return url ? checkPostgres(url) : checkSqlite(join(options.dataDir, "ferry.db"), options.quick === true);
}

function checkSqlite(file: string, quick: boolean): StoreCheck {
  if (!existsSync(file)) {
    return { ok: true, location: file, findings: ["no store yet (it is created on first use)"] };
  }
  let database: Database.Database | undefined;
  try {
    database = new Database(file, { fileMustExist: true });
    database.pragma("busy_timeout = 10000");
    const rows = database.pragma(`${quick ? "quick_check" : "integrity_check"}(${MAX_FINDINGS})`) as Record<
      string,
      unknown
    >[];
    const findings = rows.map((row) => String(Object.values(row)[0]));
    return { ok: findings.length === 1 && findings[0] === "ok", location: file, findings };
  } catch (error) {
    if (!isCorruption(error)) throw error;
    return { ok: false, location: file, findings: [error instanceof Error ? error.message : String(error)] };
  } finally {
    database?.close();
  }
}

async function checkPostgres(url: string): Promise<StoreCheck> {
  const location = redactUrl(url);
  const { default: pg } = await import("pg");
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 15_000,
    application_name: "ferry",
  });
  try {
    await client.connect();
    const table = await client.query<{ exists: string | null }>(
      "select to_regclass('kysely_migration') as exists",
    );
    if (table.rows[0]?.exists == null) {
      return {
        ok: true,
        location,
        findings: ["no Ferry store in this database yet (it is created on first use)"],
      };
    }
    const applied = (
      await client.query<{ name: string }>("select name from kysely_migration order by name")
    ).rows.map((row) => row.name);
    const pending = migrationNames.filter((name) => !applied.includes(name));
    const newer = applied.filter((name) => !migrationNames.includes(name));
    return {
      ok: true,
      location,
      findings: [
        `ok: ${applied.length} migration${applied.length === 1 ? "" : "s"} applied`,
        ...(pending.length > 0 ? [`${pending.length} to apply on the next open: ${pending.join(", ")}`] : []),
        ...(newer.length > 0 ? [`applied by a newer Ferry: ${newer.join(", ")}`] : []),
      ],
    };
  } catch (error) {
    return {
      ok: false,
      location,
      findings: [
        `cannot check the PostgreSQL store ${location}: ${error instanceof Error ? error.message : String(error)}`,
      ],
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
