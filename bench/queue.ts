/**
 * Benchmark (not a test): task throughput of the store's queue. N workers share one store, each
 * looping enqueue → claim → complete (a task per file, spread over 64 device queues), on SQLite
 * in a temp folder and on PostgreSQL (FERRY_TEST_DATABASE_URL or a throwaway server, as in the
 * tests). Prints tasks per second against the targets.
 *
 *   npm run bench:queue -- [--tasks 20000] [--workers 4]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStore, type Store } from "../src/store/store.ts";
import { StoreTaskQueue } from "../src/tasks/store-queue.ts";
import { testPostgres } from "../test/servers/postgres.ts";

const { values } = parseArgs({
  options: { tasks: { type: "string", default: "20000" }, workers: { type: "string", default: "4" } },
});
const TASKS = Number(values.tasks);
const WORKERS = Number(values.workers);
const QUEUES = 64;
const TARGETS = { sqlite: 2_000, postgres: 1_000 } as const;

interface Result {
  done: number;
  seconds: number;
  /** Mean ms per call of each operation. */
  ms: { enqueue: number; claim: number; complete: number };
}

/** Each worker runs enqueue → claim → complete until `total` tasks are done, then drains what is left. */
async function measure(store: Store, total: number, prefix: string): Promise<Result> {
  let next = 0;
  let done = 0;
  const spent = { enqueue: 0, claim: 0, complete: 0 };
  const calls = { enqueue: 0, claim: 0, complete: 0 };
  const timed = async <T>(op: keyof typeof spent, call: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await call();
    } finally {
      spent[op] += performance.now() - t0;
      calls[op]++;
    }
  };
  const worker = async (n: number) => {
    const queue = new StoreTaskQueue(store);
    const name = `${prefix}-worker-${n}`;
    for (;;) {
      const i = next++;
      if (i < total) {
        await timed("enqueue", () =>
          queue.enqueue({
            kind: "upload",
            key: `${prefix}/file-${i}`,
            queue: `device-${i % QUEUES}`,
            payload: { i },
          }),
        );
      }
      const task = await timed("claim", () => queue.claim(name, { leaseMs: 60_000 }));
      if (task) {
        await timed("complete", () => queue.complete(task.id, name));
        done++;
      } else if (i >= total && (await queue.counts()).queued === 0) {
        return;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: WORKERS }, (_, n) => worker(n)));
  const seconds = (performance.now() - t0) / 1000;
  const mean = (op: keyof typeof spent) => spent[op] / Math.max(1, calls[op]);
  return {
    done,
    seconds,
    ms: { enqueue: mean("enqueue"), claim: mean("claim"), complete: mean("complete") },
  };
}

async function bench(label: keyof typeof TARGETS, store: Store): Promise<void> {
  try {
    await measure(store, 500, "warm-up");
    const { done, seconds, ms } = await measure(store, TASKS, "run");
    const rate = done / seconds;
    const target = TARGETS[label];
    console.log(
      `${label.padEnd(9)} ${done} tasks, ${WORKERS} workers: ${Math.round(rate).toLocaleString("en")}/s ` +
        `(target >= ${target.toLocaleString("en")}/s: ${rate >= target ? "ok" : "BELOW"}, ratio ${(rate / target).toFixed(2)}); ` +
        `mean ms per enqueue ${ms.enqueue.toFixed(2)}, claim ${ms.claim.toFixed(2)}, complete ${ms.complete.toFixed(2)}`,
    );
  } finally {
    await store.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), "ferry-bench-queue-"));
try {
  await bench("sqlite", await openStore({ dataDir: join(dir, "sqlite") }));
  const pg = await testPostgres();
  try {
    if (pg.reason) console.log(`postgres  skipped: ${pg.reason}`);
    else
      await bench(
        "postgres",
        await openStore({ dataDir: join(dir, "pg"), databaseUrl: await pg.database() }),
      );
  } finally {
    await pg.close();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
