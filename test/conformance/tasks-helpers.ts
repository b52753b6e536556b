/** Small tools of the task-queue conformance suite: a clock to move by hand, workers in other processes. */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { LeaseLostError, type Task, type TaskQueue } from "../../src/tasks/queue.ts";
import type { TaskStoreHandle } from "./tasks.ts";

/** What a harness's worker module exports (see tasks-worker.ts). */
export interface WorkerModule {
  openQueue(arg: string): Promise<{ queue: TaskQueue; close(): Promise<void> }>;
}

/** The checkpoint a held task is given, which the suite expects back after the kill. */
export const HELD_CHECKPOINT = { offset: 1_234_567, token: "resume-here" };
export const WORKER_LEASE_MS = 60_000;
/** How long a draining worker (or claimer) waits for a queue to empty before it reports a failure. */
export const DRAIN_LIMIT_MS = 60_000;

export const SECOND = 1000;
export const LEASE = 30 * SECOND;
/** A request for an upload task; `more` overrides its fields. */
export const task = (key: string, more: Partial<Parameters<TaskQueue["enqueue"]>[0]> = {}) => ({
  kind: "upload",
  key,
  queue: "printer-a",
  payload: { path: `${key}.gcode` },
  ...more,
});

/** Registers a test that gets a new store, a clock and a queue on them; the store is closed afterwards. */
export type Check = (
  name: string,
  body: (q: TaskQueue, clock: ManualClock, store: { handle: TaskStoreHandle }) => Promise<void>,
) => void;

export async function claimOne(q: TaskQueue, worker = "w1", leaseMs = LEASE): Promise<Task> {
  const claimed = await q.claim(worker, { leaseMs });
  assert.ok(claimed, `${worker} claims a task`);
  return claimed;
}

/** Time that moves only when a test says so. */
export class ManualClock {
  now: number;
  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }
  readonly read = (): number => this.now;
  advance(ms: number): number {
    this.now += ms;
    return this.now;
  }
}

export async function expectLeaseLost(operation: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(operation, LeaseLostError, what);
}

const WORKER_SCRIPT = new URL("./tasks-worker.ts", import.meta.url).pathname;

export interface WorkerProcess {
  child: ChildProcess;
  /** Lines it printed so far. */
  lines: string[];
  /** Resolves with the first line that starts with `prefix`. */
  line(prefix: string): Promise<string>;
  /** Resolves with the exit code (or the signal's name) and stderr. */
  exited: Promise<{ code: number | string; stderr: string }>;
}

export function startWorker(
  mode: "drain" | "hold",
  module: string,
  arg: string,
  worker: string,
): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_SCRIPT, mode, module, arg, worker], {
    // stdin stays open for the worker's life: it exits when this process ends.
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    for (const waiter of waiters.filter((w) => line.startsWith(w.prefix))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  const exited = new Promise<{ code: number | string; stderr: string }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code: code ?? signal ?? -1, stderr })),
  );
  return {
    child,
    lines,
    exited,
    line: (prefix) =>
      new Promise((resolve, reject) => {
        const seen = lines.find((l) => l.startsWith(prefix));
        if (seen !== undefined) {
          resolve(seen);
          return;
        }
        waiters.push({ prefix, resolve });
        void exited.then(({ code, stderr: err }) =>
          reject(new Error(`worker ${worker} exited (${code}) before printing "${prefix}": ${err}`)),
        );
      }),
  };
}

/** Checks, as often as it can, that no queue has two running tasks; `stop()` ends it and reports. */
export function watchOneRunningPerQueue(queue: TaskQueue): { stop(): Promise<{ samples: number }> } {
  const state = { running: true };
  let samples = 0;
  const loop = (async () => {
    while (state.running) {
      const tasks = await queue.list({ status: "running" });
      const queues = tasks.map((t) => t.queue);
      assert.equal(
        new Set(queues).size,
        queues.length,
        `two running tasks in one queue: ${queues.join(", ")}`,
      );
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    stop: async () => {
      state.running = false;
      await loop;
      return { samples };
    },
  };
}
