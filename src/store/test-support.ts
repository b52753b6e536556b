/**
 * Both dialects for the store's tests: each `fresh()` is a new data folder (and, on PostgreSQL, a
 * new database), removed by `cleanup()`.
 *
 *   const pg = await testPostgres();
 *   for (const dialect of dialects(pg)) describe(dialect.label, () => { test("...", dialect.testOptions, ...) });
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestPostgres } from "../../test/servers/postgres.ts";
import { openStore, type Store, type StoreOptions } from "./store.ts";

export interface Dialect {
  label: "sqlite" | "postgres";
  /** Options for each test(): skipped (with the reason) where there is no PostgreSQL. */
  testOptions: { skip?: string };
  /** Options of a new store: an empty data folder, and an empty database on PostgreSQL. */
  fresh(): Promise<StoreOptions & { dataDir: string }>;
  /** A store opened on fresh options; closed by cleanup() if the test does not. */
  open(options?: StoreOptions): Promise<Store>;
  cleanup(): Promise<void>;
}

export function dialects(pg: TestPostgres): Dialect[] {
  return [dialect("sqlite", {}, undefined), dialect("postgres", pg.testOptions, () => pg.database())];
}

/** SQLite alone, for tests that are about SQLite. */
export function sqliteDialect(): Dialect {
  return dialect("sqlite", {}, undefined);
}

function dialect(
  label: Dialect["label"],
  testOptions: { skip?: string },
  database: (() => Promise<string>) | undefined,
): Dialect {
  const dirs: string[] = [];
  const stores: Store[] = [];
  const fresh = async () => {
    const dataDir = await mkdtemp(join(tmpdir(), `ferry-store-${label}-`));
    dirs.push(dataDir);
    return database ? { dataDir, databaseUrl: await database() } : { dataDir };
  };
  return {
    label,
    testOptions,
    fresh,
    open: async (options) => {
      const store = await openStore(options ?? (await fresh()));
      stores.push(store);
      return store;
    },
    cleanup: async () => {
      for (const store of stores.splice(0)) await store.close().catch(() => undefined);
      for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
    },
  };
}
