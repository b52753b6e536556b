/**
 * The durable task queue contract (DESIGN.md §3). One implementation over the store (Kysely) serves
 * SQLite and PostgreSQL; the shared conformance suite (test/conformance/tasks.ts) runs on both.
 *
 * Invariants:
 * - at most one *queued* task per `key` (dedupe); `enqueue` keeps or replaces it;
 * - at most one *running* task per `queue` (serialization, e.g. one transfer per printer);
 * - a running task holds a lease; a lease that expires returns the task to the queue, and the
 *   old holder's heartbeat/complete/fail then fail with a LeaseLostError;
 * - checkpoints are saved with heartbeats and survive restarts;
 * - retryable failures back off exponentially; after `maxAttempts` the task is `dead`, last error kept.
 *
 * Details every implementation shares (the conformance suite checks each):
 * - `lockedBy` names a worker; a worker id must be unique among the claimers alive at one time
 *   (e.g. node id + loop number). A holder keeps its task until it hands it back or the lease is
 *   expired by `expireLeases` (a lease past its time that nobody expired yet still holds).
 * - An expired lease counts as a failed attempt (a task that kills its worker every time ends up
 *   dead instead of looping); the task returns at once, with its checkpoint.
 * - A task that returns to the queue (retry, park, release, expired lease) while a newer task of
 *   its key is queued is superseded by it: it is deleted, since the newer request is the one wanted.
 *   When the newer one is the same change (same payload, compared with keys sorted) and has no
 *   checkpoint, it takes the superseded one's: a transfer resumes instead of starting over.
 *   `retry` leaves a dead task dead when its key has a queued task.
 * - `enqueue(..., "replace")` replaces payload, priority and runAt, and clears checkpoint and
 *   progress unless the payload is the same (the same change queued again, e.g. by a rescan, keeps
 *   what an earlier attempt checkpointed); kind, queue, maxAttempts, attempts and lastError stay.
 */

/** Attempts of a task whose request names none. */
export const DEFAULT_MAX_ATTEMPTS = 10;

export type TaskStatus = "queued" | "running" | "done" | "dead";

export interface Task<P = unknown, C = unknown> {
  id: string;
  kind: string;
  /** Dedupe key: at most one queued task per key. */
  key: string;
  /** Serialization key: at most one running task per queue. */
  queue: string;
  payload: P;
  /** Higher runs first. */
  priority: number;
  /** ms since the epoch; not claimed before. */
  runAt: number;
  /** Failed attempts so far (a park or a release does not count). */
  attempts: number;
  maxAttempts: number;
  status: TaskStatus;
  lockedBy: string | null;
  leaseUntil: number | null;
  checkpoint: C | null;
  /** Bytes (or units) done, for progress displays. */
  progress: number | null;
  /** What the task belongs to, for filters and pausing (e.g. "sync:photos"); null for none. */
  scope: string | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface EnqueueRequest<P = unknown> {
  kind: string;
  key: string;
  queue: string;
  payload: P;
  priority?: number;
  runAt?: number;
  /** Default DEFAULT_MAX_ATTEMPTS. */
  maxAttempts?: number;
  /** What it belongs to (Task.scope); fixed at creation, kept when the task is replaced. */
  scope?: string;
}

/** Which tasks a list or a count is about; every field narrows it. */
export interface TaskFilter {
  status?: TaskStatus;
  /** Only tasks of these queues. */
  queues?: readonly string[];
  scope?: string;
  /** None of these queues or scopes (paused ones). */
  excludeQueues?: readonly string[];
  excludeScopes?: readonly string[];
}

export interface EnqueueResult {
  id: string;
  /** "created": new task; "kept": a queued task with this key existed and was left as is;
   *  "replaced": its payload/priority/runAt were replaced (its checkpoint is cleared unless the
   *  payload is the same). */
  outcome: "created" | "kept" | "replaced";
}

export interface ClaimOptions {
  leaseMs: number;
  /** Only these kinds (default: any). */
  kinds?: readonly string[];
  /** Never from these queues (paused: their device is offline). */
  excludeQueues?: readonly string[];
  /** Never of these scopes (paused syncs). */
  excludeScopes?: readonly string[];
}

export interface FailOptions {
  message: string;
  /** false: dead at once. */
  retryable: boolean;
  /** Back to the queue at `runAt` without counting an attempt (device unavailable: wait, don't burn retries). */
  park?: { runAt: number };
  checkpoint?: unknown;
}

export interface TaskCounts {
  queued: number;
  running: number;
  done: number;
  dead: number;
}

export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

export interface TaskQueue {
  enqueue<P>(request: EnqueueRequest<P>, onConflict?: "keep" | "replace"): Promise<EnqueueResult>;
  /** Atomically takes the best runnable task (priority desc, runAt asc, id asc), or undefined. */
  claim(worker: string, options: ClaimOptions): Promise<Task | undefined>;
  /** Extends the lease; saves checkpoint/progress when given. LeaseLostError if the lease is gone. */
  heartbeat(
    id: string,
    worker: string,
    update: { leaseMs: number; checkpoint?: unknown; progress?: number },
  ): Promise<void>;
  complete(id: string, worker: string): Promise<void>;
  /**
   * `complete`, then `claim` for the same worker, in one step where the store allows (one SQLite
   * transaction): what a worker does between two tasks, once per small file.
   */
  completeAndClaim(id: string, worker: string, options: ClaimOptions): Promise<Task | undefined>;
  fail(id: string, worker: string, options: FailOptions): Promise<void>;
  /** Gives a task back untouched (shutdown): queued again, attempt not counted, checkpoint kept. */
  release(id: string, worker: string, checkpoint?: unknown): Promise<void>;
  /** Returns running tasks whose lease has expired to the queue; returns how many. */
  expireLeases(): Promise<number>;
  get(id: string): Promise<Task | undefined>;
  /** In claim order (priority desc, runAt asc, id asc). */
  list(filter: TaskFilter & { limit?: number }): Promise<Task[]>;
  counts(filter?: TaskFilter): Promise<TaskCounts>;
  /** Dead → queued with attempts reset; returns how many. */
  retry(ids: readonly string[] | "all-dead"): Promise<number>;
  /** Deletes queued tasks (of `ids`); running, done and dead ones stay. Returns the ids deleted. */
  cancel(ids: readonly string[]): Promise<string[]>;
  /** Deletes done tasks finished before `before` (ms); returns how many. */
  prune(before: number): Promise<number>;
}
