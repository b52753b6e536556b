/**
 * The shared TaskQueue conformance suite (src/tasks/queue.ts is the contract). Every store runs it
 * from a test file of a few lines. Time is the harness's injected clock, moved by hand: nothing
 * here sleeps to let time pass. Each test gets an empty store of its own.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DEFAULT_MAX_ATTEMPTS, type TaskQueue } from "../../src/tasks/queue.ts";
import {
  claimOne,
  expectLeaseLost,
  HELD_CHECKPOINT,
  LEASE,
  ManualClock,
  SECOND,
  startWorker,
  task,
  WORKER_LEASE_MS,
  type Check,
} from "./tasks-helpers.ts";
import { describeTaskQueueConcurrency } from "./tasks-concurrency.ts";
import { describeFailureChecks } from "./tasks-failures.ts";

export interface TaskStoreHandle {
  /** A queue over this store (one worker or node; several share the store), on `clock`, without jitter. */
  queue(clock: () => number): TaskQueue;
  /** The same store after a restart: this handle is closed and the store opened anew. */
  reopen(): Promise<TaskStoreHandle>;
  close(): Promise<void>;
  /** What the harness's `workerModule` needs to open this store in another process. */
  processArg?: string;
}

export interface TaskQueueHarness {
  /** A new, empty store. */
  open(): Promise<TaskStoreHandle>;
  /** File URL of a module exporting `openQueue(arg)` (tasks-helpers.ts WorkerModule); without it the multi-process tests skip. */
  workerModule?: string;
  /** Once after the suite. */
  cleanup?(): Promise<void>;
  /** Limit of each test in ms (default 30 000; the concurrency tests get 4x). */
  timeoutMs?: number;
}

export function describeTaskQueueConformance(
  label: string,
  harness: TaskQueueHarness,
  /** For each test: `{ skip: reason }` where the store cannot run here. */
  options: { skip?: string } = {},
): void {
  const timeout = harness.timeoutMs ?? 30_000;
  /** Runs `body` with a new store, a clock and a queue on it; closes the store afterwards. */
  const check: Check = (name, body) => {
    it(name, { timeout, ...options }, async () => {
      const clock = new ManualClock();
      const store = { handle: await harness.open() };
      try {
        await body(store.handle.queue(clock.read), clock, store);
      } finally {
        await store.handle.close();
      }
    });
  };

  describe(`${label}: task queue conformance`, () => {
    after(() => harness.cleanup?.());

    check("a new task has the contract's defaults and keeps its payload as JSON", async (q, clock) => {
      const payload = { path: "Привет/a b#1.gcode", size: 2 ** 40, nested: [1, null, { ok: true }] };
      const { id, outcome } = await q.enqueue({ kind: "upload", key: "k1", queue: "p", payload });
      assert.equal(outcome, "created");
      assert.deepEqual(await q.get(id), {
        id,
        kind: "upload",
        key: "k1",
        queue: "p",
        payload,
        priority: 0,
        runAt: clock.now,
        attempts: 0,
        maxAttempts: DEFAULT_MAX_ATTEMPTS,
        status: "queued",
        lockedBy: null,
        leaseUntil: null,
        checkpoint: null,
        progress: null,
        lastError: null,
        scope: null,
        createdAt: clock.now,
        updatedAt: clock.now,
      });
      assert.equal(await q.get("no-such-task"), undefined);
    });

    check(
      "one queued task per key: keep leaves it as is, replace swaps it and clears the checkpoint",
      async (q, clock) => {
        const first = await q.enqueue(task("k", { payload: 1 }));
        assert.deepEqual(await q.enqueue(task("k", { payload: 2, priority: 9 })), {
          id: first.id,
          outcome: "kept",
        });
        assert.deepEqual(await q.enqueue(task("k", { payload: 3 }), "keep"), {
          id: first.id,
          outcome: "kept",
        });
        assert.equal((await q.get(first.id))?.payload, 1);
        // A queued task with a checkpoint: claimed, checkpointed, given back.
        await claimOne(q);
        await q.heartbeat(first.id, "w1", { leaseMs: LEASE, checkpoint: { offset: 10 }, progress: 10 });
        await q.release(first.id, "w1");
        assert.deepEqual((await q.get(first.id))?.checkpoint, { offset: 10 });
        clock.advance(SECOND);
        const replaced = await q.enqueue(
          task("k", { payload: 4, priority: 5, runAt: clock.now + 7 }),
          "replace",
        );
        assert.deepEqual(replaced, { id: first.id, outcome: "replaced" });
        const now = await q.get(first.id);
        assert.deepEqual(
          [now?.payload, now?.priority, now?.runAt, now?.checkpoint, now?.progress],
          [4, 5, clock.now + 7, null, null],
        );
        assert.equal((await q.counts()).queued, 1);
      },
    );

    check(
      "replace with the same payload keeps the checkpoint: a rescan does not undo a parked attempt",
      async (q) => {
        const first = await q.enqueue(task("k", { payload: { path: "a", size: 9 } }));
        await claimOne(q);
        await q.heartbeat(first.id, "w1", { leaseMs: LEASE, checkpoint: { bytes: 4 }, progress: 4 });
        await q.release(first.id, "w1");
        // The same payload, its fields in another order (another planner wrote it): still the same.
        await q.enqueue(task("k", { payload: { size: 9, path: "a" }, priority: 3 }), "replace");
        const same = await q.get(first.id);
        assert.deepEqual([same?.checkpoint, same?.progress, same?.priority], [{ bytes: 4 }, 4, 3]);
        await q.enqueue(task("k", { payload: { path: "a", size: 10 } }), "replace");
        const changed = await q.get(first.id);
        assert.deepEqual([changed?.checkpoint, changed?.progress], [null, null]);
      },
    );

    check(
      "the same change queued while it ran takes its checkpoint when it is given back (kill -9 mid-transfer)",
      async (q) => {
        const first = await q.enqueue(task("k", { payload: { path: "a", size: 9 } }));
        await claimOne(q);
        await q.heartbeat(first.id, "w1", { leaseMs: LEASE, checkpoint: { placed: "a" } });
        const again = await q.enqueue(task("k", { payload: { size: 9, path: "a" } }));
        assert.notEqual(again.id, first.id);
        await q.release(first.id, "w1");
        assert.equal(await q.get(first.id), undefined, "superseded");
        assert.deepEqual((await q.get(again.id))?.checkpoint, { placed: "a" });
        // Another change does not inherit what the older attempt did.
        const second = await claimOne(q);
        await q.heartbeat(second.id, "w1", { leaseMs: LEASE, checkpoint: { placed: "b" } });
        const other = await q.enqueue(task("k", { payload: { path: "a", size: 10 } }));
        await q.release(second.id, "w1");
        assert.equal((await q.get(other.id))?.checkpoint, null);
      },
    );

    check("a running task of a key does not block a new queued one", async (q) => {
      const first = await q.enqueue(task("k", { payload: 1 }));
      await claimOne(q);
      const second = await q.enqueue(task("k", { payload: 2 }));
      assert.equal(second.outcome, "created");
      assert.notEqual(second.id, first.id);
      assert.deepEqual(await q.enqueue(task("k", { payload: 3 }), "replace"), {
        id: second.id,
        outcome: "replaced",
      });
      assert.equal((await q.get(first.id))?.payload, 1, "the running task is not replaced");
      assert.deepEqual(await q.counts(), { queued: 1, running: 1, done: 0, dead: 0 });
    });

    check("claims by priority, then runAt, then id, and nothing before its runAt", async (q, clock) => {
      const t0 = clock.now;
      const ids: Record<string, string> = {};
      const add = async (key: string, priority: number, runAt: number) =>
        (ids[key] = (await q.enqueue(task(key, { queue: key, priority, runAt }))).id);
      await add("late-urgent", 10, t0 + 5 * SECOND);
      await add("low", -1, t0 - 3 * SECOND);
      await add("high", 5, t0);
      await add("mid-old", 1, t0 - 2 * SECOND);
      await add("mid-new", 1, t0 - SECOND);
      const tie = [await add("tie-1", 0, t0), await add("tie-2", 0, t0), await add("tie-3", 0, t0)].sort();
      const order: string[] = [];
      for (let t = await q.claim("w", { leaseMs: LEASE }); t; t = await q.claim("w", { leaseMs: LEASE })) {
        order.push(t.id);
      }
      const expected = [ids.high, ids["mid-old"], ids["mid-new"], ...tie, ids.low];
      assert.deepEqual(order, expected);
      clock.advance(5 * SECOND);
      assert.equal((await claimOne(q)).id, ids["late-urgent"], "claimable once its runAt has come");
    });

    check("kinds and excludeQueues narrow what is claimed", async (q) => {
      await q.enqueue(task("a", { kind: "upload", queue: "p1" }));
      await q.enqueue(task("b", { kind: "delete", queue: "p2", priority: 1 }));
      await q.enqueue(task("c", { kind: "upload", queue: "p3", priority: 2 }));
      assert.equal(await q.claim("w", { leaseMs: LEASE, kinds: [] }), undefined, "no kinds: nothing");
      assert.equal(await q.claim("w", { leaseMs: LEASE, kinds: ["scan"] }), undefined);
      const excluded = await q.claim("w", { leaseMs: LEASE, kinds: ["upload"], excludeQueues: ["p3"] });
      assert.equal(excluded?.key, "a");
      assert.equal((await q.claim("w", { leaseMs: LEASE, kinds: ["delete", "upload"] }))?.key, "c");
      assert.equal(await q.claim("w", { leaseMs: LEASE, excludeQueues: ["p2"] }), undefined);
      assert.equal((await q.claim("w", { leaseMs: LEASE, excludeQueues: [] }))?.key, "b");
    });

    check("never claims from a queue that has a running task; other queues go on", async (q) => {
      const a1 = await q.enqueue(task("a1", { queue: "A", priority: 9 }));
      const a2 = await q.enqueue(task("a2", { queue: "A", priority: 9 }));
      const b1 = await q.enqueue(task("b1", { queue: "B" }));
      assert.equal((await claimOne(q, "w1")).id, a1.id);
      assert.equal((await claimOne(q, "w2")).id, b1.id, "A is busy: B's lower-priority task goes");
      assert.equal(await q.claim("w3", { leaseMs: LEASE }), undefined, "A's second task waits");
      await q.complete(a1.id, "w1");
      assert.equal((await claimOne(q, "w3")).id, a2.id);
    });

    check("claims from a free queue however many tasks wait in busy ones", async (q) => {
      // More waiting tasks than any first look at the top of the queue would cover.
      for (let i = 0; i < 150; i++)
        await q.enqueue(task(`busy-${i}`, { queue: i % 2 ? "A" : "B", priority: 9 }));
      await claimOne(q, "wa");
      await claimOne(q, "wb");
      const free = await q.enqueue(task("free", { queue: "C", priority: -9 }));
      assert.equal((await claimOne(q, "wc")).id, free.id);
      assert.equal(await q.claim("wd", { leaseMs: LEASE }), undefined);
      assert.equal(
        await q.claim("wd", { leaseMs: LEASE, kinds: ["upload"], excludeQueues: ["X"] }),
        undefined,
      );
    });

    check("a claim takes a lease for its worker", async (q, clock) => {
      const { id } = await q.enqueue(task("k"));
      clock.advance(5);
      const claimed = await claimOne(q, "node-1/0", 12_345);
      assert.equal(claimed.id, id);
      assert.deepEqual(
        [claimed.status, claimed.lockedBy, claimed.leaseUntil, claimed.attempts],
        ["running", "node-1/0", clock.now + 12_345, 0],
      );
      assert.deepEqual(await q.get(id), claimed);
    });

    check(
      "heartbeat extends the lease and saves checkpoint and progress; a stranger's is refused",
      async (q, clock) => {
        const { id } = await q.enqueue(task("k"));
        await claimOne(q, "w1", 1000);
        clock.advance(900);
        await q.heartbeat(id, "w1", {
          leaseMs: 1000,
          checkpoint: { offset: 512, token: "u-1" },
          progress: 512,
        });
        let now = await q.get(id);
        assert.deepEqual(
          [now?.leaseUntil, now?.checkpoint, now?.progress],
          [clock.now + 1000, { offset: 512, token: "u-1" }, 512],
        );
        clock.advance(900);
        await q.heartbeat(id, "w1", { leaseMs: 1000 });
        now = await q.get(id);
        assert.deepEqual(
          [now?.leaseUntil, now?.checkpoint, now?.progress],
          [clock.now + 1000, { offset: 512, token: "u-1" }, 512],
        );
        assert.equal(await q.expireLeases(), 0, "a heartbeat lease has not expired");
        await expectLeaseLost(q.heartbeat(id, "w2", { leaseMs: 1000 }), "another worker's heartbeat");
        await expectLeaseLost(q.heartbeat("no-such-task", "w1", { leaseMs: 1000 }), "an unknown task");
      },
    );

    check(
      "an expired lease returns the task with its checkpoint; the old holder has lost it",
      async (q, clock) => {
        const { id } = await q.enqueue(task("k", { queue: "A" }));
        await q.enqueue(task("k2", { queue: "A" }));
        await claimOne(q, "dead-worker", 1000);
        await q.heartbeat(id, "dead-worker", { leaseMs: 1000, checkpoint: { offset: 77 }, progress: 77 });
        clock.advance(1000);
        assert.equal(await q.expireLeases(), 0, "not before the lease ends");
        assert.equal(await q.claim("w2", { leaseMs: LEASE }), undefined, "the queue is still held");
        clock.advance(1);
        assert.equal(await q.expireLeases(), 1);
        const back = await q.get(id);
        assert.deepEqual(
          [back?.status, back?.lockedBy, back?.leaseUntil, back?.checkpoint, back?.progress, back?.attempts],
          ["queued", null, null, { offset: 77 }, 77, 1],
        );
        assert.match(back?.lastError ?? "", /lease/);
        assert.equal(await q.expireLeases(), 0, "only once");
        const again = await claimOne(q, "w2");
        assert.deepEqual(
          [again.id, again.checkpoint],
          [id, { offset: 77 }],
          "the same task, first in its queue",
        );
        await expectLeaseLost(q.heartbeat(id, "dead-worker", { leaseMs: 1000 }), "old holder's heartbeat");
        await expectLeaseLost(q.complete(id, "dead-worker"), "old holder's complete");
        await expectLeaseLost(
          q.fail(id, "dead-worker", { message: "x", retryable: true }),
          "old holder's fail",
        );
        await expectLeaseLost(q.release(id, "dead-worker"), "old holder's release");
        await q.complete(id, "w2");
        assert.equal((await q.get(id))?.status, "done");
      },
    );

    check(
      "an expired lease counts as an attempt: a task that kills its worker ends up dead",
      async (q, clock) => {
        const { id } = await q.enqueue(task("poison", { maxAttempts: 2 }));
        for (let i = 0; i < 2; i++) {
          await claimOne(q, `w${i}`, 1000);
          clock.advance(1001);
          assert.equal(await q.expireLeases(), 1);
        }
        const dead = await q.get(id);
        assert.deepEqual([dead?.status, dead?.attempts], ["dead", 2]);
        assert.match(dead?.lastError ?? "", /lease of w1/);
        assert.equal(await q.claim("w", { leaseMs: LEASE }), undefined);
      },
    );

    check("complete, fail and release check the lease", async (q) => {
      const { id } = await q.enqueue(task("k"));
      await claimOne(q, "w1");
      await expectLeaseLost(q.complete(id, "w2"), "complete by another worker");
      await expectLeaseLost(q.fail(id, "w2", { message: "x", retryable: false }), "fail by another worker");
      await expectLeaseLost(q.release(id, "w2"), "release by another worker");
      assert.equal((await q.get(id))?.status, "running", "untouched by the strangers");
      await q.complete(id, "w1");
      await expectLeaseLost(q.complete(id, "w1"), "complete twice");
      await expectLeaseLost(q.release(id, "w1"), "release after complete");
      await expectLeaseLost(q.complete("no-such-task", "w1"), "complete of an unknown task");
      assert.deepEqual(await q.counts(), { queued: 0, running: 0, done: 1, dead: 0 });
    });

    check("completeAndClaim settles the task and takes the next, its own queue's included", async (q) => {
      const a1 = await q.enqueue(task("a1", { queue: "A", priority: 9 }));
      const a2 = await q.enqueue(task("a2", { queue: "A", priority: 9 }));
      const b1 = await q.enqueue(task("b1", { queue: "B", kind: "delete" }));
      assert.equal((await claimOne(q, "w1")).id, a1.id);
      const next = await q.completeAndClaim(a1.id, "w1", { leaseMs: LEASE });
      assert.equal(next?.id, a2.id, "A is free again, and its task ranks first");
      assert.deepEqual([next.status, next.lockedBy], ["running", "w1"]);
      assert.equal((await q.get(a1.id))?.status, "done");
      // The claim's options hold: nothing of these kinds is left.
      assert.equal(await q.completeAndClaim(a2.id, "w1", { leaseMs: LEASE, kinds: ["upload"] }), undefined);
      assert.equal((await q.get(a2.id))?.status, "done");
      assert.equal((await claimOne(q, "w2")).id, b1.id);
      // A lost lease settles nothing and claims nothing.
      await expectLeaseLost(q.completeAndClaim(b1.id, "w1", { leaseMs: LEASE }), "another worker's task");
      await expectLeaseLost(q.completeAndClaim(a1.id, "w1", { leaseMs: LEASE }), "a task done already");
      assert.deepEqual(await q.counts(), { queued: 0, running: 1, done: 2, dead: 0 });
    });

    check("checkpoints and leases survive a restart of the store", async (q, clock, store) => {
      const { id } = await q.enqueue(task("k", { payload: { big: "x".repeat(10_000) } }));
      await claimOne(q, "w1", 1000);
      await q.heartbeat(id, "w1", { leaseMs: 1000, checkpoint: { parts: [1, 2, 3], uploadId: "abc" } });
      store.handle = await store.handle.reopen();
      const after = store.handle.queue(clock.read);
      assert.equal((await after.get(id))?.lockedBy, "w1");
      clock.advance(1001);
      assert.equal(await after.expireLeases(), 1);
      const again = await claimOne(after, "w2");
      assert.deepEqual(
        [again.checkpoint, (again.payload as { big: string }).big.length],
        [{ parts: [1, 2, 3], uploadId: "abc" }, 10_000],
      );
    });

    describeFailureChecks(check);

    describeTaskQueueConcurrency(harness, { timeout: timeout * 4, ...options });

    it(
      "a worker killed with kill -9 loses its task to the lease; it returns with its checkpoint",
      { timeout: timeout * 4, ...options },
      async (t) => {
        if (!harness.workerModule) {
          t.skip("the harness has no worker module");
          return;
        }
        const handle = await harness.open();
        try {
          const clock = new ManualClock(Date.now());
          const q = handle.queue(clock.read);
          const { id } = await q.enqueue(task("big-file", { queue: "printer-a" }));
          await q.enqueue(task("next-file", { queue: "printer-a" }));
          const worker = startWorker("hold", harness.workerModule, handle.processArg ?? "", "doomed");
          t.after(() => {
            if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
          });
          assert.equal(await worker.line("held "), `held ${id}`);
          worker.child.kill("SIGKILL");
          assert.equal((await worker.exited).code, "SIGKILL");
          assert.equal(await q.claim("w2", { leaseMs: LEASE }), undefined, "the queue waits for the lease");
          assert.equal(await q.expireLeases(), 0);
          clock.now = Date.now() + WORKER_LEASE_MS + 1;
          assert.equal(await q.expireLeases(), 1);
          const back = await claimOne(q, "w2");
          assert.deepEqual(
            [back.id, back.checkpoint, back.progress, back.attempts],
            [id, HELD_CHECKPOINT, 42, 1],
          );
          await expectLeaseLost(q.complete(id, "doomed"), "the killed worker's name");
          await q.complete(id, "w2");
        } finally {
          await handle.close();
        }
      },
    );
  });
}
