/**
 * The task-queue suite's concurrency checks: many claimers on one store, in one process and in
 * several, each task claimed and completed exactly once, never two running tasks in one queue.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { TaskQueue } from "../../src/tasks/queue.ts";
import { DRAIN_LIMIT_MS, ManualClock, startWorker, watchOneRunningPerQueue } from "./tasks-helpers.ts";
import type { TaskQueueHarness } from "./tasks.ts";

const TASKS = 1000;
/** Fewer queues than claimers: a claimer that ignored a running task would soon take a second one. */
const QUEUES = 5;
const LEASE = 600_000;

async function fill(q: TaskQueue): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let i = 0; i < TASKS; i++) {
    const { id } = await q.enqueue({
      kind: "upload",
      key: `file-${i}`,
      queue: `printer-${i % QUEUES}`,
      payload: { i },
      priority: i % 3,
    });
    ids.add(id);
  }
  assert.equal(ids.size, TASKS);
  return ids;
}

/** Every id claimed once, and the store agrees that all are done. */
async function expectEachOnce(q: TaskQueue, ids: Set<string>, claimed: string[]): Promise<void> {
  const seen = new Map<string, number>();
  for (const id of claimed) seen.set(id, (seen.get(id) ?? 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(twice, [], "tasks claimed more than once");
  assert.deepEqual(
    [...ids].filter((id) => !seen.has(id)),
    [],
    "tasks never claimed",
  );
  assert.equal(claimed.length, TASKS);
  assert.deepEqual(await q.counts(), { queued: 0, running: 0, done: TASKS, dead: 0 });
}

export function describeTaskQueueConcurrency(
  harness: TaskQueueHarness,
  options: { timeout: number; skip?: string },
): void {
  it(
    `${TASKS} tasks, 8 concurrent claimers: each claimed and completed exactly once, one running per queue`,
    options,
    async () => {
      const handle = await harness.open();
      try {
        const clock = new ManualClock();
        const ids = await fill(handle.queue(clock.read));
        const claimed: string[] = [];
        /** Queue → the task a claimer holds in it (from the claim's return to the call of complete). */
        const held = new Map<string, string>();
        const watcher = watchOneRunningPerQueue(handle.queue(clock.read));
        const claimer = async (n: number) => {
          // Each claimer is its own queue instance, as on separate nodes.
          const q = handle.queue(clock.read);
          const worker = `claimer-${n}`;
          const deadline = Date.now() + DRAIN_LIMIT_MS;
          for (;;) {
            const task = await q.claim(worker, { leaseMs: LEASE });
            if (!task) {
              const counts = await q.counts();
              if (counts.queued === 0 && counts.running === 0) return;
              assert.ok(Date.now() < deadline, `${worker}: ${counts.queued} tasks never became claimable`);
              await new Promise((resolve) => setTimeout(resolve, 1));
              continue;
            }
            claimed.push(task.id);
            const other = held.get(task.queue);
            assert.equal(other, undefined, `${task.queue}: ${task.id} claimed while ${other ?? ""} runs`);
            held.set(task.queue, task.id);
            // Hold it a moment, so that a claim that ignores the running task would be caught here.
            await new Promise((resolve) => setImmediate(resolve));
            held.delete(task.queue);
            await q.complete(task.id, worker);
          }
        };
        let samples = 0;
        try {
          await Promise.all(Array.from({ length: 8 }, (_, n) => claimer(n)));
        } finally {
          ({ samples } = await watcher.stop());
        }
        assert.ok(samples > 0, "the watcher looked at least once");
        await expectEachOnce(handle.queue(clock.read), ids, claimed);
      } finally {
        await handle.close();
      }
    },
  );

  it(`${TASKS} tasks, 4 worker processes: each claimed and completed exactly once`, options, async (t) => {
    if (!harness.workerModule) {
      t.skip("the harness has no worker module");
      return;
    }
    const handle = await harness.open();
    try {
      // The workers run on the real clock: the tasks' runAt must not be in its future.
      const clock = new ManualClock(Date.now() - 1000);
      const q = handle.queue(clock.read);
      const ids = await fill(q);
      const watcher = watchOneRunningPerQueue(q);
      const workers = Array.from({ length: 4 }, (_, n) =>
        startWorker("drain", harness.workerModule ?? "", handle.processArg ?? "", `process-${n}`),
      );
      let exits: Awaited<(typeof workers)[number]["exited"]>[];
      try {
        exits = await Promise.all(workers.map((w) => w.exited));
      } finally {
        for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
        await watcher.stop();
      }
      for (const [n, exit] of exits.entries()) assert.equal(exit.code, 0, `process-${n}: ${exit.stderr}`);
      const perProcess = workers.map((w) => w.lines.filter((l) => l.startsWith("claimed ")).length);
      const claimed = workers.flatMap((w) =>
        w.lines.filter((l) => l.startsWith("claimed ")).map((l) => l.slice(8)),
      );
      await expectEachOnce(q, ids, claimed);
      t.diagnostic(`claims per process: ${perProcess.join(", ")}`);
    } finally {
      await handle.close();
    }
  });
}
