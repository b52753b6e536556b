/** The `tasks` table's rows for the store's task queue: columns, conversions, shared steps. */
import { randomBytes } from "node:crypto";
import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { Schema, TasksTable } from "../store/schema.ts";
import { LeaseLostError, type Task } from "./queue.ts";

/** Ids in creation order (ms, then a per-process counter), random in the tail across processes. */
export function taskId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else {
    sequence++;
  }
  return (
    lastMs.toString(16).padStart(12, "0") +
    sequence.toString(16).padStart(6, "0") +
    randomBytes(5).toString("hex")
  );
}
let lastMs = 0;
let sequence = 0;

/** Statuses as literals in SQL, so both databases use the partial indexes (status = 'queued' ...). */
export const QUEUED = sql.lit<"queued">("queued");
export const RUNNING = sql.lit<"running">("running");
export const DONE = sql.lit<"done">("done");
export const DEAD = sql.lit<"dead">("dead");

/** Every column, named: a statement never changes shape when a migration adds a column (store.ts). */
export const TASK_COLUMNS = [
  "id",
  "kind",
  "key",
  "queue",
  "payload",
  "priority",
  "run_at",
  "attempts",
  "max_attempts",
  "status",
  "locked_by",
  "lease_until",
  "checkpoint",
  "progress",
  "last_error",
  "scope",
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof TasksTable)[];
export const QUALIFIED_COLUMNS = TASK_COLUMNS.map((column) => `tasks.${column}` as const);

/** Statement chunk for `in (...)` lists. */
export const CHUNK = 500;
export type Row = Selectable<TasksTable>;
type Db = Kysely<Schema>;

/**
 * Moves a running task to `status` and frees its queue. Back to the queue while a newer task of the
 * same key is queued, it is superseded by that one (the newer request) and deleted; when the newer
 * one is the same change (same payload) and has no checkpoint, it takes this one's.
 */
export async function settle(
  trx: Transaction<Schema>,
  row: Row,
  status: "queued" | "dead",
  set: Partial<Row>,
  now: number,
): Promise<void> {
  const newer =
    status === "queued" &&
    (await trx
      .selectFrom("tasks")
      .select(["id", "payload", "checkpoint"])
      .where("key", "=", row.key)
      .where("status", "=", QUEUED)
      .executeTakeFirst());
  if (newer) {
    await trx.deleteFrom("tasks").where("id", "=", row.id).execute();
    // The same change queued again while this one ran: what this attempt checkpointed goes on there.
    const checkpoint = set.checkpoint === undefined ? row.checkpoint : set.checkpoint;
    if (newer.payload === row.payload && newer.checkpoint === null && checkpoint !== null) {
      await trx
        .updateTable("tasks")
        .set({ checkpoint, progress: set.progress === undefined ? row.progress : set.progress })
        .where("id", "=", newer.id)
        .execute();
    }
  } else {
    await trx
      .updateTable("tasks")
      .set({ ...set, status, locked_by: null, lease_until: null, updated_at: now })
      .where("id", "=", row.id)
      .execute();
  }
  await freeQueue(trx, row.queue, row.id);
}

export async function freeQueue(trx: Transaction<Schema>, queue: string, id: string): Promise<void> {
  await trx
    .updateTable("task_queues")
    .set({ running_id: null })
    .where("name", "=", queue)
    .where("running_id", "=", id)
    .execute();
}

/** Dead tasks (of `ids`, or all) back to the queue with attempts reset; how many. */
export async function requeueDead(
  trx: Transaction<Schema>,
  ids: readonly string[] | "all-dead",
  now: number,
): Promise<number> {
  const dead: { id: string; key: string; updated_at: number }[] = [];
  const chunks = ids === "all-dead" ? [undefined] : chunk(ids);
  for (const part of chunks) {
    dead.push(
      ...(await trx
        .selectFrom("tasks")
        .select(["id", "key", "updated_at"])
        .where("status", "=", DEAD)
        .$if(part !== undefined, (qb) => qb.where("id", "in", part ?? []))
        .execute()),
    );
  }
  dead.sort((a, b) => b.updated_at - a.updated_at || (a.id < b.id ? 1 : -1));
  // At most one queued task per key: the newest dead task of a key, and only if none is queued.
  const byKey = new Map<string, string>();
  for (const { id, key } of dead) if (!byKey.has(key)) byKey.set(key, id);
  for (const keys of chunk([...byKey.keys()])) {
    const queued = await trx
      .selectFrom("tasks")
      .select("key")
      .where("status", "=", QUEUED)
      .where("key", "in", keys)
      .execute();
    for (const { key } of queued) byKey.delete(key);
  }
  let retried = 0;
  for (const part of chunk([...byKey.values()])) {
    const result = await trx
      .updateTable("tasks")
      .set({
        status: "queued",
        attempts: 0,
        run_at: now,
        updated_at: now,
        locked_by: null,
        lease_until: null,
      })
      .where("status", "=", DEAD)
      .where("id", "in", part)
      .executeTakeFirst();
    retried += Number(result.numUpdatedRows);
  }
  return retried;
}

/** The error for a worker that no longer holds a task, saying what became of it. */
export async function lost(db: Db, id: string, worker: string): Promise<LeaseLostError> {
  const row = await db
    .selectFrom("tasks")
    .select(["status", "locked_by", "kind", "key"])
    .where("id", "=", id)
    .executeTakeFirst();
  if (!row)
    return new LeaseLostError(
      `task ${id} is gone (done and pruned, or superseded by a newer task of its key)`,
    );
  const now = row.status === "running" ? `running under ${row.locked_by ?? "another worker"}` : row.status;
  return new LeaseLostError(
    `task ${id} (${row.kind} ${row.key}) is no longer held by ${worker}: it is ${now}`,
  );
}

export function toTask(row: Row): Task {
  return {
    id: row.id,
    kind: row.kind,
    key: row.key,
    queue: row.queue,
    payload: JSON.parse(row.payload) as unknown,
    priority: row.priority,
    runAt: row.run_at,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    status: row.status,
    lockedBy: row.locked_by,
    leaseUntil: row.lease_until,
    checkpoint: row.checkpoint === null ? null : (JSON.parse(row.checkpoint) as unknown),
    progress: row.progress,
    lastError: row.last_error,
    scope: row.scope,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A JSON value with every plain object's keys in sorted order (arrays keep theirs). */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== "object") return value;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
  );
}

export function toJson(value: unknown, what: string): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`${what} is not JSON: ${(error as Error).message}`, { cause: error });
  }
}

export function integer(value: number, name: string, key: string, min = Number.MIN_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `task ${key}: ${name} must be an integer${min > 0 ? ` >= ${min}` : ""}, not ${value}`,
    );
  }
  return value;
}

export function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number, not ${value}`);
  return Math.round(value);
}

export function chunk<T>(items: readonly T[]): T[][] {
  const parts: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) parts.push(items.slice(i, i + CHUNK));
  return parts;
}

/** PostgreSQL 23505 or SQLite's UNIQUE constraint error. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE";
}
