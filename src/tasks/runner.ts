/**
 * The one task runner (DESIGN.md §3): workers claim tasks from the queue, run them through the
 * handler registered for their kind with a heartbeat that extends the lease and saves the
 * checkpoint, and settle them: complete, retry with backoff, park (wait without spending an
 * attempt), dead, or released untouched when Ferry stops. A lease lost to another node aborts the
 * handler. On start, the tasks this node held when it last died return to the queue at once.
 *
 * `ferry serve` runs it until stopped (`start`/`stop`), patient with devices that are away;
 * `ferry sync` runs it until the queue is drained (`drain`), giving up on what cannot be done now.
 * Sync work and, later, printer workers register their handlers on the same runner.
 */
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { FerryError, toFerryError, type ErrorCode } from "../core/errors.ts";
import type { Publisher } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { TaskEvents, TaskLabel, TaskRef } from "./events.ts";
import { LeaseLostError, type ClaimOptions, type Task, type TaskQueue } from "./queue.ts";

export interface RunContext<C = unknown> {
  signal: AbortSignal;
  /** What an earlier attempt checkpointed, or null. */
  checkpoint: C | null;
  /** Units done so far (bytes) and, when the work can resume from there, the checkpoint to keep. */
  progress(units: number, checkpoint?: C): void;
  /** Stores a checkpoint now, not with the next heartbeat (before a target holds anything to lose). */
  save(checkpoint: C): Promise<void>;
}

export interface Outcome {
  /** Units (bytes) this attempt moved; a resumed transfer counts only the rest. */
  bytes: number;
  /** Why nothing was done (already delivered, gone from the source, ...). */
  skipped?: string;
}

export interface TaskHandler<P = never, C = never> {
  describe(payload: P): TaskLabel;
  run(task: Task<P, C>, run: RunContext<C>): Promise<Outcome>;
  /**
   * The task is given up for good (dead, or left over when a one-shot run ends): release what it
   * holds outside the queue, e.g. a resumable upload on a server. Never throws.
   */
  abandon?(task: Task<P, C>): Promise<void>;
}

/**
 * Not now: back to the queue after `afterMs`, no attempt spent (a busy printer, a printed file).
 * `wholeDevice`: the reason holds every task of the device (a printer that prints), not only this one.
 */
export class Park extends Error {
  override readonly name = "Park";
  readonly afterMs: number;
  readonly wholeDevice: boolean;
  constructor(reason: string, afterMs: number, options: { wholeDevice?: boolean } = {}) {
    super(reason);
    this.afterMs = afterMs;
    this.wholeDevice = options.wholeDevice ?? false;
  }
}

/** Why a task could not run now; see RunnerOptions.held. */
export interface Held {
  /** "park": the handler asked to wait (Park); "away": its device is away or refuses us. */
  why: "park" | "away";
  /** The reason holds the device's other tasks too (away, or a Park that says so). */
  wholeDevice: boolean;
  code: ErrorCode;
  message: string;
}

/** What the runner leaves alone for now. */
export interface Paused {
  queues?: readonly string[];
  scopes?: readonly string[];
}

export interface RunnerOptions {
  queue: TaskQueue;
  bus: Publisher<TaskEvents>;
  logger: Logger;
  /** This node's name, stable across restarts: workers are `<node>/<n>`. */
  node: string;
  clock?: Clock;
  workers?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  /**
   * `wait` (ferry serve): a task held up waits in the queue (parked) and tries again later.
   * `give-up` (ferry sync): it ends now, as skipped (park) or failed (away), for the next run.
   */
  patience?: "wait" | "give-up";
  /** What not to claim from now: queues of devices that are away, scopes of paused syncs. */
  paused?: () => Paused;
  /** Told when a task is held up, before it is parked or given up (probe the device, pause its queues). */
  held?: (task: Task, label: TaskLabel, held: Held) => Promise<void> | void;
}

const PROGRESS_EVERY_MS = 200;
const IDLE_MS = 500;
/** A task whose device is away is looked at again after this (the connection checker wakes it sooner). */
const AWAY_RETRY_MS = 5_000;
/**
 * Reasons for signals that fire for every task (a wake-up, a task settled), made once: aborting
 * without a reason makes a DOMException, stack trace and all, each time; nobody reads these.
 */
const WOKEN = new Error("woken");
const SETTLED = new FerryError("ABORTED", "task settled");

export class TaskRunner {
  readonly #o: Required<Omit<RunnerOptions, "held">> & Pick<RunnerOptions, "held">;
  readonly #handlers = new Map<string, TaskHandler<unknown, unknown>>();
  readonly #stop = new AbortController();
  #wake = new AbortController();
  /** Fired when a worker settles a task or finds none: a drain looks again. */
  #changed = new AbortController();
  #loops: Promise<void>[] = [];
  /** Workers claiming or running a task. */
  #busy = 0;
  #released = 0;

  constructor(options: RunnerOptions) {
    this.#o = {
      clock: systemClock,
      workers: 2,
      leaseMs: 30_000,
      heartbeatMs: 2_000,
      patience: "wait",
      paused: () => ({}),
      ...options,
    };
  }

  /** The handler of a kind of task; one per kind. */
  register<P, C>(kind: string, handler: TaskHandler<P, C>): void {
    if (this.#handlers.has(kind)) throw new Error(`a handler for "${kind}" tasks is registered already`);
    this.#handlers.set(kind, handler);
  }

  /** What a task is about, as its handler says (for lists and status). */
  describe(task: Task): TaskRef {
    const handler = this.#handlers.get(task.kind);
    const label = handler ? handler.describe(task.payload) : { what: `${task.kind} task` };
    return { id: task.id, kind: task.kind, ...label };
  }

  /** Tasks given back untouched at stop, with their checkpoints. */
  get released(): number {
    return this.#released;
  }

  /** Wakes idle workers (new tasks were queued, a device is back). */
  notify(): void {
    const wake = this.#wake;
    this.#wake = new AbortController();
    wake.abort(WOKEN);
  }

  /** Takes back this node's tasks from a previous life, then runs workers until `stop()`. */
  async start(): Promise<void> {
    await this.#recover();
    const { leaseMs, workers, node } = this.#o;
    this.#loops.push(
      this.#every(Math.max(1000, leaseMs / 3), async () => {
        if ((await this.#o.queue.expireLeases()) > 0) this.notify();
      }),
    );
    for (let i = 0; i < workers; i++) this.#loops.push(this.#work(`${node}/${i}`));
  }

  /** Stops claiming, aborts running tasks and gives them back with their checkpoints. */
  async stop(reason = "Ferry is stopping"): Promise<void> {
    if (!this.#stop.signal.aborted) this.#stop.abort(new FerryError("ABORTED", reason));
    this.notify();
    await Promise.allSettled(this.#loops);
    this.#loops = [];
  }

  /**
   * Runs until nothing is left to do now: no task running, none queued outside paused queues
   * (tasks waiting for a backoff are waited for). Then stops. A one-shot run's whole life.
   */
  async drain(): Promise<void> {
    await this.start();
    try {
      while (!this.#stop.signal.aborted) {
        const changed = this.#changed.signal;
        if (this.#busy === 0 && !(await this.#runnableLeft())) break;
        await this.#o.clock
          .sleep(IDLE_MS, AbortSignal.any([this.#stop.signal, changed]))
          .catch(() => undefined);
      }
    } finally {
      await this.stop("the run is over");
    }
  }

  /** Tasks still queued outside what is paused. */
  async #runnableLeft(): Promise<boolean> {
    return (await this.#o.queue.counts(this.#excluded())).queued > 0;
  }

  #excluded(): Pick<ClaimOptions, "excludeQueues" | "excludeScopes"> {
    const { queues, scopes } = this.#o.paused();
    return {
      ...(queues?.length ? { excludeQueues: queues } : {}),
      ...(scopes?.length ? { excludeScopes: scopes } : {}),
    };
  }

  /** Hands what was given up to its handler's `abandon` (a one-shot run's leftovers, dead tasks). */
  async abandon(task: Task): Promise<void> {
    const handler = this.#handlers.get(task.kind);
    if (!handler?.abandon || task.checkpoint === null) return;
    try {
      await handler.abandon(task);
    } catch (error) {
      this.#o.logger.warn({ task: task.id, err: toFerryError(error).message }, "could not clean up a task");
    }
  }

  async #recover(): Promise<void> {
    const mine = `${this.#o.node}/`;
    for (const task of await this.#o.queue.list({ status: "running", limit: 100_000 })) {
      if (task.lockedBy?.startsWith(mine)) {
        await this.#o.queue
          .release(task.id, task.lockedBy, task.checkpoint ?? undefined)
          .catch(() => undefined);
      }
    }
  }

  async #every(ms: number, fn: () => Promise<unknown>): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await this.#o.clock.sleep(ms, signal);
        await fn();
      } catch (error) {
        // The signal may have fired while `fn` ran.
        if (this.#stop.signal.aborted) return;
        this.#o.logger.warn({ err: toFerryError(error).message }, "periodic task check failed");
      }
    }
  }

  /** Waits IDLE_MS, or less when woken or stopped. */
  async #idle(): Promise<void> {
    const signal = AbortSignal.any([this.#stop.signal, this.#wake.signal]);
    await this.#o.clock.sleep(IDLE_MS, signal).catch(() => undefined);
  }

  #claimOptions(): ClaimOptions {
    return { leaseMs: this.#o.leaseMs, kinds: [...this.#handlers.keys()], ...this.#excluded() };
  }

  async #work(worker: string): Promise<void> {
    const signal = this.#stop.signal;
    /** Claimed as the last task completed. */
    let next: Task | undefined;
    while (!signal.aborted) {
      let task: Task | undefined;
      this.#busy++;
      try {
        task = next ?? (await this.#o.queue.claim(worker, this.#claimOptions()));
        next = undefined;
        if (task) next = await this.#run(task, worker);
      } catch (error) {
        this.#o.logger.warn({ err: toFerryError(error).message }, "claiming a task failed");
      } finally {
        this.#busy--;
        const changed = this.#changed;
        this.#changed = new AbortController();
        changed.abort(WOKEN);
      }
      // A settled task may unblock its queue or end a drain; nothing to claim: wait a little.
      if (task) this.notify();
      else await this.#idle();
    }
    // Claimed as Ferry stopped: back to the queue untouched.
    if (next) {
      await this.#o.queue.release(next.id, worker, next.checkpoint ?? undefined).catch(() => undefined);
      this.#released++;
    }
  }

  /** Runs and settles `task`; on success, returns the worker's next task, claimed with the completion. */
  async #run(task: Task, worker: string): Promise<Task | undefined> {
    const { queue, bus, clock, leaseMs, heartbeatMs } = this.#o;
    const handler = this.#handlers.get(task.kind);
    const ref = this.describe(task);
    const abort = new AbortController();
    const stopping = this.#stop.signal;
    const onStop = () => abort.abort(stopping.reason);
    stopping.addEventListener("abort", onStop, { once: true });
    let progress = task.progress ?? 0;
    let checkpoint = task.checkpoint;
    let lastEmit = 0;
    const beat = (async () => {
      while (!abort.signal.aborted) {
        try {
          await clock.sleep(heartbeatMs, abort.signal);
          await queue.heartbeat(task.id, worker, {
            leaseMs,
            progress,
            ...(checkpoint === null ? {} : { checkpoint }),
          });
        } catch (error) {
          if (error instanceof LeaseLostError) abort.abort(error);
        }
      }
    })();
    const started = clock.now();
    bus.emit("task.started", ref);
    try {
      if (!handler) throw new FerryError("UNSUPPORTED", `no handler for "${task.kind}" tasks`);
      const outcome = await handler.run(task, {
        signal: abort.signal,
        checkpoint,
        progress: (units, cp) => {
          progress = units;
          if (cp !== undefined) checkpoint = cp;
          const now = clock.now();
          if (now - lastEmit >= PROGRESS_EVERY_MS) {
            lastEmit = now;
            bus.emit("task.progress", { ...ref, bytes: units });
          }
        },
        save: async (cp) => {
          checkpoint = cp;
          await queue.heartbeat(task.id, worker, { leaseMs, progress, checkpoint });
        },
      });
      // The next task comes with the completion: one transaction between two small files.
      let next: Task | undefined;
      if (stopping.aborted) await queue.complete(task.id, worker);
      else next = await queue.completeAndClaim(task.id, worker, this.#claimOptions());
      bus.emit("task.done", {
        ...ref,
        bytes: outcome.bytes,
        ms: clock.now() - started,
        ...(outcome.skipped === undefined ? {} : { skipped: outcome.skipped }),
      });
      return next;
    } catch (error) {
      await this.#failed({ ...task, checkpoint }, worker, error, ref, started);
      return undefined;
    } finally {
      if (!abort.signal.aborted) abort.abort(SETTLED);
      await beat;
      stopping.removeEventListener("abort", onStop);
    }
  }

  async #failed(task: Task, worker: string, error: unknown, ref: TaskRef, started: number): Promise<void> {
    const { queue, bus, clock, patience } = this.#o;
    const cp = task.checkpoint === null ? {} : { checkpoint: task.checkpoint };
    try {
      if (this.#stop.signal.aborted) {
        await queue.release(task.id, worker, task.checkpoint ?? undefined);
        this.#released++;
        return;
      }
      if (error instanceof LeaseLostError) return;
      const failure = error instanceof Park ? undefined : toFerryError(error);
      const away = failure?.code === "UNAVAILABLE" || failure?.code === "AUTH";
      if (error instanceof Park || away) {
        const message = failure?.message ?? (error as Park).message;
        const code = failure?.code ?? "BUSY";
        await this.#o.held?.(task, ref, {
          why: away ? "away" : "park",
          wholeDevice: away || (error as Park).wholeDevice,
          code,
          message,
        });
        if (patience === "wait") {
          // Wait for the device instead of spending attempts.
          const afterMs = error instanceof Park ? error.afterMs : AWAY_RETRY_MS;
          await queue.fail(task.id, worker, {
            message,
            retryable: true,
            park: { runAt: clock.now() + afterMs },
            ...cp,
          });
          bus.emit("task.failed", { ...ref, code, error: message, outcome: "parked" });
        } else if (away) {
          await queue.fail(task.id, worker, { message, retryable: false, ...cp });
          bus.emit("task.failed", { ...ref, code, error: message, outcome: "dead" });
          await this.abandon(task);
        } else {
          // Not now, and a one-shot run has no later: done, as skipped, for the next run.
          await queue.complete(task.id, worker);
          bus.emit("task.done", { ...ref, bytes: 0, ms: clock.now() - started, skipped: message });
          await this.abandon(task);
        }
        return;
      }
      const fail = failure ?? toFerryError(error);
      // Ferry aborts only to stop (handled above) or on a lost lease (fail() refuses it): an ABORTED
      // here came from below (a library's own timeout or abort) and is worth another attempt.
      const retryable = fail.retryable || fail.code === "ABORTED";
      const dead = !retryable || task.attempts + 1 >= task.maxAttempts;
      await queue.fail(task.id, worker, { message: fail.message, retryable, ...cp });
      bus.emit("task.failed", {
        ...ref,
        code: fail.code,
        error: fail.message,
        outcome: dead ? "dead" : "retry",
      });
      if (dead) await this.abandon(task);
    } catch (storeError) {
      if (storeError instanceof LeaseLostError) return;
      this.#o.logger.error(
        { err: toFerryError(storeError).message, task: task.id },
        "could not record a task's failure",
      );
    }
  }
}
