/**
 * A task-queue worker in a process of its own, for the conformance suite's multi-process checks.
 *
 *   node tasks-worker.ts drain MODULE ARG WORKER   claim and complete until nothing is queued or
 *                                                  running; prints "claimed <id>" per task
 *   node tasks-worker.ts hold MODULE ARG WORKER    claim one task, save a checkpoint, print
 *                                                  "held <id>", then wait to be killed
 *
 * MODULE (a file URL) exports `openQueue(arg)`: `{ queue: TaskQueue; close(): Promise<void> }`,
 * over the store the suite's test uses; the queue runs on the real clock.
 */
import { setTimeout as delay } from "node:timers/promises";
import { DRAIN_LIMIT_MS, HELD_CHECKPOINT, WORKER_LEASE_MS, type WorkerModule } from "./tasks-helpers.ts";

const [mode, module, arg, worker] = process.argv.slice(2);
if ((mode !== "drain" && mode !== "hold") || !module || arg === undefined || !worker) {
  process.stderr.write("usage: tasks-worker.ts drain|hold MODULE ARG WORKER\n");
  process.exit(2);
}
// Never outlive the suite: our stdin is its pipe, which closes when it ends however it ends.
process.stdin.on("end", () => process.exit(3));
process.stdin.resume();
const opened = await ((await import(module)) as WorkerModule).openQueue(arg);
const queue = opened.queue;
const say = (line: string) =>
  new Promise<void>((resolve) => process.stdout.write(line + "\n", () => resolve()));

if (mode === "hold") {
  let task = await queue.claim(worker, { leaseMs: WORKER_LEASE_MS });
  for (let i = 0; !task && i < 200; i++) {
    await delay(10);
    task = await queue.claim(worker, { leaseMs: WORKER_LEASE_MS });
  }
  if (!task) throw new Error(`${worker}: nothing to hold`);
  await queue.heartbeat(task.id, worker, {
    leaseMs: WORKER_LEASE_MS,
    checkpoint: HELD_CHECKPOINT,
    progress: 42,
  });
  await say(`held ${task.id}`);
  // Until the suite kills us (kill -9: no cleanup of any kind runs).
  setInterval(() => undefined, 1 << 30);
} else {
  // A queue that never drains (a bug under test) ends this worker with a failure, not a hang.
  const deadline = Date.now() + DRAIN_LIMIT_MS;
  for (;;) {
    const task = await queue.claim(worker, { leaseMs: WORKER_LEASE_MS });
    if (task) {
      await say(`claimed ${task.id}`);
      await queue.complete(task.id, worker);
      continue;
    }
    const counts = await queue.counts();
    if (counts.queued === 0 && counts.running === 0) break;
    if (Date.now() > deadline) {
      process.stderr.write(
        `${worker}: still ${counts.queued} queued, ${counts.running} running after ${DRAIN_LIMIT_MS} ms\n`,
      );
      process.exit(1);
    }
    await delay(2);
  }
  await opened.close();
  process.exit(0);
}
