/**
 * The task queue over the store (src/tasks/queue.ts is the contract; DESIGN.md §3), for both
 * dialects: on PostgreSQL a claim (each of its two ways to look, claim-queries.ts) and a completion
 * are one statement each; on SQLite, one transaction each. What keeps a queue to one running task
 * is its row in `task_queues`: a claim takes a task only together with its queue row while that
 * row names no running task, and sets it.
 * On PostgreSQL both rows are locked `FOR UPDATE SKIP LOCKED`, so claimers on many nodes pass over
 * each other's queues instead of waiting, and a claim that meets a queue row changed meanwhile
 * re-reads it (READ COMMITTED re-checks locked rows) and skips it. On SQLite every write
 * transaction is IMMEDIATE (store.ts), one writer at a time across processes.
 */
import {
  sql,
  type Expression,
  type ExpressionBuilder,
  type QueryCreator,
  type SqlBool,
  type Transaction,
} from "kysely";
import type { Schema } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import { prepare } from "../store/prepared.ts";
import {
  DEFAULT_MAX_ATTEMPTS,
  type ClaimOptions,
  type EnqueueRequest,
  type EnqueueResult,
  type FailOptions,
  type Task,
  type TaskCounts,
  type TaskFilter,
  type TaskQueue,
} from "./queue.ts";
import { choosers, type Chooser } from "./claim-queries.ts";
import {
  canonical,
  chunk,
  DONE,
  freeQueue,
  integer,
  isUniqueViolation,
  lost,
  positive,
  QUALIFIED_COLUMNS,
  requeueDead,
  QUEUED,
  RUNNING,
  settle,
  TASK_COLUMNS,
  taskId,
  toJson,
  toTask,
  type Row,
} from "./task-rows.ts";

export interface StoreTaskQueueOptions {
  clock?: () => number;
  ids?: () => string;
  /** Spreads a backoff delay so that many failures do not retry at one instant; default: 50–100 % of it. */
  jitter?: (delayMs: number) => number;
}

/** First retry after 1 s, doubling up to 5 min. */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 5 * 60_000;

/** Delay before the retry that follows the `attempts`-th failure (1-based), before jitter. */
export function backoffMs(attempts: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

/** How often an operation is retried after meeting a concurrent enqueue of the same key. */
const CONFLICT_RETRIES = 3;

export class StoreTaskQueue implements TaskQueue {
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #ids: () => string;
  readonly #jitter: (delayMs: number) => number;
  readonly #pg: boolean;
  /** Queues whose row exists (queue rows are never deleted, so this cannot go stale). */
  readonly #knownQueues = new Set<string>();

  constructor(store: Store, options: StoreTaskQueueOptions = {}) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
    this.#ids = options.ids ?? taskId;
    this.#jitter = options.jitter ?? ((ms) => ms / 2 + (Math.random() * ms) / 2);
    this.#pg = store.dialect === "postgres";
  }

  async enqueue<P>(
    request: EnqueueRequest<P>,
    onConflict: "keep" | "replace" = "keep",
  ): Promise<EnqueueResult> {
    const now = this.#clock();
    const id = this.#ids();
    // Canonical (keys sorted), so the same payload written in another order is the same change.
    const payload = toJson(canonical(request.payload), `payload of task ${request.key}`) ?? "null";
    const priority = integer(request.priority ?? 0, "priority", request.key);
    const runAt = integer(request.runAt ?? now, "runAt", request.key);
    const maxAttempts = integer(request.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, "maxAttempts", request.key, 1);
    if (!this.#knownQueues.has(request.queue)) {
      await insertQueue(this.#store.db, request.queue);
      this.#knownQueues.add(request.queue);
    }
    const insert = onConflict === "replace" ? insertReplacing : insertKeeping;
    const { rows } = await insert(
      this.#store.db,
      id,
      request.kind,
      request.key,
      request.queue,
      payload,
      priority,
      runAt,
      maxAttempts,
      request.scope ?? null,
      now,
    );
    const kept = rows[0]?.id;
    if (kept === undefined) throw new Error(`enqueue of ${request.key}: no task row returned`);
    return { id: kept, outcome: kept === id ? "created" : onConflict === "replace" ? "replaced" : "kept" };
  }

  async claim(worker: string, options: ClaimOptions): Promise<Task | undefined> {
    const leaseMs = positive(options.leaseMs, "leaseMs");
    if (options.kinds?.length === 0) return undefined;
    const now = this.#clock();
    if (!this.#pg) {
      return this.#store.db.transaction().execute((trx) => takeSqlite(trx, options, worker, now, leaseMs));
    }
    const running = {
      status: "running",
      locked_by: worker,
      lease_until: now + leaseMs,
      updated_at: now,
    } as const;
    for (const choose of choosers(options, now, true)) {
      const task = await this.#claimPostgres(choose, running);
      if (task) return task;
    }
    return undefined;
  }

  /** One statement (one round trip): task and queue row locked, rows other claims hold skipped. */
  async #claimPostgres(choose: Chooser, running: Partial<Row>): Promise<Task | undefined> {
    const row = await this.#store.db
      .with("picked", (db) => choose(db).forUpdate(["t", "q"]).skipLocked())
      .with("busy", (db) =>
        db
          .updateTable("task_queues")
          .from("picked")
          .set((eb) => ({ running_id: eb.ref("picked.id") }))
          .whereRef("task_queues.name", "=", "picked.queue"),
      )
      .updateTable("tasks")
      .from("picked")
      .set(running)
      .whereRef("tasks.id", "=", "picked.id")
      .returning(QUALIFIED_COLUMNS)
      .executeTakeFirst();
    return row && toTask(row);
  }

  async heartbeat(
    id: string,
    worker: string,
    update: { leaseMs: number; checkpoint?: unknown; progress?: number },
  ): Promise<void> {
    const now = this.#clock();
    const leaseUntil = now + positive(update.leaseMs, "leaseMs");
    const db = this.#store.db;
    const progress = update.progress ?? null;
    // A checkpoint is saved before each upload's first byte: with many small files, one a file.
    const result =
      update.checkpoint === undefined
        ? await beat(db, id, worker, leaseUntil, now, progress)
        : await beatSaving(
            db,
            id,
            worker,
            leaseUntil,
            now,
            progress,
            toJson(update.checkpoint, `checkpoint of task ${id}`) ?? null,
          );
    if (result.numAffectedRows === 0n) throw await lost(db, id, worker);
  }

  async complete(id: string, worker: string): Promise<void> {
    const now = this.#clock();
    if (this.#pg) {
      // One statement: the task done and its queue freed together.
      const row = await this.#store.db
        .with("finished", (db) => finished(db, id, worker, now))
        .with("freed", (db) =>
          db
            .updateTable("task_queues")
            .from("finished")
            .set({ running_id: null })
            .whereRef("task_queues.name", "=", "finished.queue")
            .whereRef("task_queues.running_id", "=", "finished.id"),
        )
        .selectFrom("finished")
        .select("id")
        .executeTakeFirst();
      if (!row) throw await lost(this.#store.db, id, worker);
      return;
    }
    await this.#store.db.transaction().execute((trx) => finishSqlite(trx, id, worker, now));
  }

  async completeAndClaim(id: string, worker: string, options: ClaimOptions): Promise<Task | undefined> {
    if (this.#pg || options.kinds?.length === 0) {
      await this.complete(id, worker);
      return this.claim(worker, options);
    }
    const leaseMs = positive(options.leaseMs, "leaseMs");
    const now = this.#clock();
    return this.#store.db.transaction().execute(async (trx) => {
      await finishSqlite(trx, id, worker, now);
      return takeSqlite(trx, options, worker, now, leaseMs);
    });
  }

  async fail(id: string, worker: string, options: FailOptions): Promise<void> {
    const now = this.#clock();
    const checkpoint =
      options.checkpoint === undefined
        ? {}
        : { checkpoint: toJson(options.checkpoint, `checkpoint of task ${id}`) ?? null };
    await this.#leave(id, worker, (row) => {
      if (options.park) {
        const runAt = integer(options.park.runAt, "park.runAt", row.key);
        return { status: "queued", set: { run_at: runAt, last_error: options.message, ...checkpoint } };
      }
      const attempts = row.attempts + 1;
      if (!options.retryable || attempts >= row.max_attempts) {
        return { status: "dead", set: { attempts, last_error: options.message, ...checkpoint } };
      }
      const runAt = now + Math.round(this.#jitter(backoffMs(attempts)));
      return {
        status: "queued",
        set: { attempts, run_at: runAt, last_error: options.message, ...checkpoint },
      };
    });
  }

  async release(id: string, worker: string, checkpoint?: unknown): Promise<void> {
    const set =
      checkpoint === undefined ? {} : { checkpoint: toJson(checkpoint, `checkpoint of task ${id}`) ?? null };
    await this.#leave(id, worker, () => ({ status: "queued", set }));
  }

  async expireLeases(): Promise<number> {
    const now = this.#clock();
    return this.#retryOnConflict(() =>
      this.#store.db.transaction().execute(async (trx) => {
        const expired = await trx
          .selectFrom("tasks")
          .select(TASK_COLUMNS)
          .where("status", "=", RUNNING)
          .where("lease_until", "<", now)
          .$if(this.#pg, (qb) => qb.forUpdate().skipLocked())
          .execute();
        for (const row of expired) {
          // Counted as an attempt: a task that kills its worker every time must end up dead, not loop.
          const attempts = row.attempts + 1;
          const set = {
            attempts,
            last_error: `the lease of ${row.locked_by ?? "its worker"} expired (the worker stopped or hung)`,
          };
          await settle(trx, row, attempts >= row.max_attempts ? "dead" : "queued", set, now);
        }
        return expired.length;
      }),
    );
  }

  async get(id: string): Promise<Task | undefined> {
    const row = await this.#store.db
      .selectFrom("tasks")
      .select(TASK_COLUMNS)
      .where("id", "=", id)
      .executeTakeFirst();
    return row && toTask(row);
  }

  async list(filter: TaskFilter & { limit?: number }): Promise<Task[]> {
    const rows = await this.#store.db
      .selectFrom("tasks")
      .select(TASK_COLUMNS)
      .where((eb) => matching(eb, filter))
      .orderBy("priority", "desc")
      .orderBy("run_at")
      .orderBy("id")
      .$if(filter.limit !== undefined, (qb) => qb.limit(filter.limit ?? 0))
      .execute();
    return rows.map(toTask);
  }

  async counts(filter: TaskFilter = {}): Promise<TaskCounts> {
    const rows = await this.#store.db
      .selectFrom("tasks")
      .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
      .where((eb) => matching(eb, filter))
      .groupBy("status")
      .execute();
    const counts: TaskCounts = { queued: 0, running: 0, done: 0, dead: 0 };
    for (const { status, n } of rows) counts[status] = n;
    return counts;
  }

  async cancel(ids: readonly string[]): Promise<string[]> {
    const cancelled: string[] = [];
    for (const part of chunk(ids)) {
      const rows = await this.#store.db
        .deleteFrom("tasks")
        .where("status", "=", QUEUED)
        .where("id", "in", part)
        .returning("id")
        .execute();
      cancelled.push(...rows.map((r) => r.id));
    }
    return cancelled;
  }

  async retry(ids: readonly string[] | "all-dead"): Promise<number> {
    const now = this.#clock();
    return this.#retryOnConflict(() =>
      this.#store.db.transaction().execute((trx) => requeueDead(trx, ids, now)),
    );
  }

  async prune(before: number): Promise<number> {
    const result = await this.#store.db
      .deleteFrom("tasks")
      .where("status", "=", DONE)
      .where("updated_at", "<", before)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Ends this worker's hold on a running task: done, dead or back to the queue, as `decide` says. */
  async #leave(
    id: string,
    worker: string,
    decide: (row: Row) => { status: "queued" | "dead"; set: Partial<Row> },
  ): Promise<void> {
    const now = this.#clock();
    await this.#retryOnConflict(() =>
      this.#store.db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom("tasks")
          .select(TASK_COLUMNS)
          .where("id", "=", id)
          .where("status", "=", RUNNING)
          .where("locked_by", "=", worker)
          .$if(this.#pg, (qb) => qb.forUpdate())
          .executeTakeFirst();
        if (!row) throw await lost(trx, id, worker);
        const { status, set } = decide(row);
        await settle(trx, row, status, set, now);
      }),
    );
  }

  /**
   * A task going back to the queue can meet a task of its key that was enqueued while it ran; on
   * PostgreSQL an enqueue not yet visible to this transaction makes it fail on the unique index.
   * Run again, it sees that task and gives way to it (`settle`).
   */
  async #retryOnConflict<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (attempt >= CONFLICT_RETRIES || !isUniqueViolation(error)) throw error;
      }
    }
  }
}

const insertQueue = prepare((db, name: string) =>
  db
    .insertInto("task_queues")
    .values({ name, running_id: null })
    .onConflict((oc) => oc.column("name").doNothing()),
);

/**
 * A new queued task; one statement: the partial unique index (key where queued) decides, even
 * between nodes. A queued task of the same key is kept, or takes the new payload (`replace`).
 */
const insertTask = (replace: boolean) =>
  prepare(
    (
      db,
      id: string,
      kind: string,
      key: string,
      queue: string,
      payload: string,
      priority: number,
      runAt: number,
      maxAttempts: number,
      scope: string | null,
      now: number,
    ) =>
      db
        .insertInto("tasks")
        .values({
          id,
          kind,
          key,
          queue,
          payload,
          priority,
          run_at: runAt,
          attempts: 0,
          max_attempts: maxAttempts,
          status: QUEUED,
          locked_by: null,
          lease_until: null,
          checkpoint: null,
          progress: null,
          last_error: null,
          scope,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) =>
          oc
            .column("key")
            .where("status", "=", QUEUED)
            .doUpdateSet((eb) =>
              replace
                ? {
                    payload: eb.ref("excluded.payload"),
                    priority: eb.ref("excluded.priority"),
                    run_at: eb.ref("excluded.run_at"),
                    // The same change queued again (a rescan) keeps what a parked attempt had done.
                    checkpoint: sql<
                      string | null
                    >`case when tasks.payload = excluded.payload then tasks.checkpoint else null end`,
                    progress: sql<
                      number | null
                    >`case when tasks.payload = excluded.payload then tasks.progress else null end`,
                    updated_at: eb.ref("excluded.updated_at"),
                  }
                : // A no-op update, so that RETURNING names the task that was kept.
                  { key: eb.ref("tasks.key") },
            ),
        )
        .returning("id"),
  );
const insertKeeping = insertTask(false);
const insertReplacing = insertTask(true);

/** A running task of `worker` marked done, with its queue (for the queue row to free). */
const finished = (db: QueryCreator<Schema>, id: string, worker: string, now: number) =>
  db
    .updateTable("tasks")
    .set({ status: "done", locked_by: null, lease_until: null, updated_at: now })
    .where("id", "=", id)
    .where("status", "=", RUNNING)
    .where("locked_by", "=", worker)
    .returning(["id", "queue"]);
const finishTask = prepare(finished);

const takeTask = prepare((db, id: string, worker: string, leaseUntil: number, now: number) =>
  db
    .updateTable("tasks")
    .set({ status: "running", locked_by: worker, lease_until: leaseUntil, updated_at: now })
    .where("id", "=", id)
    .returning(TASK_COLUMNS),
);

const takeQueue = prepare((db, queue: string, id: string) =>
  db.updateTable("task_queues").set({ running_id: id }).where("name", "=", queue),
);

/**
 * A SQLite claim's steps, inside the caller's transaction, of statements compiled once (a claim per
 * small file: compiling cost more than running).
 */
async function takeSqlite(
  trx: Transaction<Schema>,
  options: ClaimOptions,
  worker: string,
  now: number,
  leaseMs: number,
): Promise<Task | undefined> {
  const { ways, args } = sqliteChoosers(options, now);
  for (const choose of ways) {
    const [picked] = (await choose(trx, ...args)).rows;
    if (!picked) continue;
    const [row] = (await takeTask(trx, picked.id, worker, now + leaseMs, now)).rows;
    if (!row) throw new Error(`task ${picked.id} was chosen but could not be claimed`);
    await takeQueue(trx, picked.queue, picked.id);
    return toTask(row);
  }
  return undefined;
}

/** A SQLite completion's steps, inside the caller's transaction: the task done, its queue freed. */
async function finishSqlite(
  trx: Transaction<Schema>,
  id: string,
  worker: string,
  now: number,
): Promise<void> {
  const [row] = (await finishTask(trx, id, worker, now)).rows;
  if (!row) throw await lost(trx, id, worker);
  await freeQueue(trx, row.queue, id);
}

/** A heartbeat: the lease extended, the progress kept when there is none new. */
const beating = (
  db: QueryCreator<Schema>,
  id: string,
  worker: string,
  leaseUntil: number,
  now: number,
  progress: number | null,
) =>
  db
    .updateTable("tasks")
    .set({
      lease_until: leaseUntil,
      updated_at: now,
      progress: sql<number | null>`coalesce(${progress}, progress)`,
    })
    .where("id", "=", id)
    .where("status", "=", RUNNING)
    .where("locked_by", "=", worker);
const beat = prepare(beating);
const beatSaving = prepare(
  (
    db,
    id: string,
    worker: string,
    leaseUntil: number,
    now: number,
    progress: number | null,
    checkpoint: string | null,
  ) => beating(db, id, worker, leaseUntil, now, progress).set({ checkpoint }),
);

/**
 * The claim queries of SQLite (claim-queries.ts), compiled once per shape of the claim's options
 * (how many kinds, excluded queues and scopes) and run with its values: `now` and those lists.
 */
const sqliteWays = new Map<string, ReturnType<typeof prepareWay>[]>();

function prepareWay(way: number, kinds: number | undefined, queues: number, scopes: number) {
  return prepare((db, ...values: unknown[]) => {
    let at = 1;
    const take = (n: number) => values.slice(at, (at += n)) as string[];
    const options: ClaimOptions = {
      leaseMs: 1,
      ...(kinds === undefined ? {} : { kinds: take(kinds) }),
      excludeQueues: take(queues),
      excludeScopes: take(scopes),
    };
    const choose = choosers(options, values[0] as number, false)[way];
    if (!choose) throw new Error(`no claim query ${way}`);
    return choose(db);
  });
}

function sqliteChoosers(options: ClaimOptions, now: number) {
  const { kinds, excludeQueues = [], excludeScopes = [] } = options;
  const shape = `${kinds?.length ?? "all"}/${excludeQueues.length}/${excludeScopes.length}`;
  let ways = sqliteWays.get(shape);
  if (!ways) {
    // Paused queues and scopes vary in number; a full cache starts over rather than grow.
    if (sqliteWays.size >= 64) sqliteWays.clear();
    ways = choosers(options, now, false).map((_, way) =>
      prepareWay(way, kinds?.length, excludeQueues.length, excludeScopes.length),
    );
    sqliteWays.set(shape, ways);
  }
  return { ways, args: [now, ...(kinds ?? []), ...excludeQueues, ...excludeScopes] };
}

/** The where-clause of a TaskFilter. */
function matching(eb: ExpressionBuilder<Schema, "tasks">, filter: TaskFilter): Expression<SqlBool> {
  const and: Expression<SqlBool>[] = [];
  if (filter.status !== undefined) and.push(eb("status", "=", filter.status));
  if (filter.queues !== undefined)
    and.push(filter.queues.length > 0 ? eb("queue", "in", filter.queues) : sql.lit(false));
  if (filter.scope !== undefined) and.push(eb("scope", "=", filter.scope));
  if (filter.excludeQueues?.length) and.push(eb("queue", "not in", filter.excludeQueues));
  if (filter.excludeScopes?.length)
    and.push(eb.or([eb("scope", "is", null), eb("scope", "not in", filter.excludeScopes)]));
  return eb.and(and);
}
