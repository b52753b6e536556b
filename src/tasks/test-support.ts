/**
 * Stores for the task-queue tests and the benchmark: SQLite in a temp folder, PostgreSQL from
 * test/servers/postgres.ts. Also the worker module of the conformance suite's multi-process tests
 * (`openQueue`): its argument is the JSON of the store's options.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TaskQueueHarness, TaskStoreHandle } from "../../test/conformance/tasks.ts";
import type { TestPostgres } from "../../test/servers/postgres.ts";
import { openStore, type StoreOptions } from "../store/store.ts";
import type { TaskQueue } from "./queue.ts";
import { StoreTaskQueue } from "./store-queue.ts";

export const workerModule = import.meta.url;

/** A handle on a new store in a folder of its own (and a database of its own, given a URL). */
export async function newStore(databaseUrl?: string): Promise<TaskStoreHandle> {
  const dataDir = await mkdtemp(join(tmpdir(), "ferry-tasks-"));
  return handle({ dataDir, ...(databaseUrl === undefined ? {} : { databaseUrl }) }, () =>
    rm(dataDir, { recursive: true, force: true }),
  );
}

async function handle(options: StoreOptions, cleanup: () => Promise<void>): Promise<TaskStoreHandle> {
  const store = await openStore(options);
  return {
    // No jitter: the suite checks backoff delays exactly.
    queue: (clock) => new StoreTaskQueue(store, { clock, jitter: (ms) => ms }),
    reopen: async () => {
      await store.close();
      return handle(options, cleanup);
    },
    close: async () => {
      await store.close();
      await cleanup();
    },
    processArg: JSON.stringify(options),
  };
}

export function sqliteHarness(): TaskQueueHarness {
  return { open: () => newStore(), workerModule };
}

export function postgresHarness(pg: TestPostgres): TaskQueueHarness {
  return { open: async () => newStore(await pg.database()), workerModule };
}

/** For tasks-worker.ts: the store the test made, opened in this process, on the real clock. */
export async function openQueue(arg: string): Promise<{ queue: TaskQueue; close(): Promise<void> }> {
  const store = await openStore(JSON.parse(arg) as StoreOptions);
  return { queue: new StoreTaskQueue(store), close: () => store.close() };
}
