/** The task runner in process, over an in-memory store, on a fake clock: no process, no real waits. */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { FakeClock } from "../core/clock.ts";
import { FerryError } from "../core/errors.ts";
import { EventBus, type Envelope } from "../core/events.ts";
import { silentLogger } from "../core/logger.ts";
import { openMemoryStore, type Store } from "../store/store.ts";
import type { TaskEvents } from "./events.ts";
import type { Task } from "./queue.ts";
import { Park, TaskRunner, type Held, type RunnerOptions } from "./runner.ts";
import { StoreTaskQueue } from "./store-queue.ts";

type Events = Envelope<TaskEvents>;

describe("TaskRunner", () => {
  let store: Store;
  let clock: FakeClock;
  let queue: StoreTaskQueue;
  let bus: EventBus<TaskEvents>;
  let events: Events[];
  let runner: TaskRunner | undefined;

  beforeEach(async () => {
    store = await openMemoryStore();
    clock = new FakeClock();
    queue = new StoreTaskQueue(store, { clock: () => clock.now(), jitter: (ms) => ms });
    bus = new EventBus<TaskEvents>({ clock: () => clock.now() });
    events = [];
    bus.onAny((e) => events.push(e));
    runner = undefined;
  });
  afterEach(async () => {
    await runner?.stop();
    await store.close();
  });

  const make = (options: Partial<RunnerOptions> = {}) =>
    (runner = new TaskRunner({ queue, bus, logger: silentLogger, node: "n", clock, workers: 1, ...options }));
  /** The next event of a type (and matching a test), however long the runner takes to publish it. */
  const next = (type: keyof TaskEvents, test: (e: Events) => boolean = () => true) =>
    new Promise<Events>((resolve) => {
      const off = bus.onAny((e) => {
        if (e.type === type && test(e)) {
          off();
          resolve(e);
        }
      });
    });
  /** Resolves once the runner's loops have all gone to sleep on the fake clock. */
  const settle = async (sleepers: number) => {
    while (clock.sleeping < sleepers) await new Promise((resolve) => setImmediate(resolve));
  };
  const add = (key: string, payload: unknown = {}, extra: { maxAttempts?: number; queue?: string } = {}) =>
    queue.enqueue({ kind: "job", key, queue: extra.queue ?? "q", payload, ...extra });

  test("runs each task through its kind's handler and publishes what it did", async () => {
    const r = make();
    const seen: unknown[] = [];
    r.register<{ n: number }, never>("job", {
      describe: (p) => ({ what: `job ${p.n}` }),
      run: (task, run) => {
        seen.push(task.payload.n);
        run.progress(5);
        return Promise.resolve({ bytes: 5 });
      },
    });
    await add("a", { n: 1 });
    await add("b", { n: 2 });
    await r.drain();
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual(
      events.filter((e) => e.type === "task.done").map((e) => (e.payload as { what: string }).what),
      ["job 1", "job 2"],
    );
    assert.deepEqual(await queue.counts(), { queued: 0, running: 0, done: 2, dead: 0 });
  });

  test("a retryable failure backs off and tries again; the last attempt leaves it dead and abandoned", async () => {
    const r = make();
    let attempts = 0;
    const abandoned: string[] = [];
    r.register<object, { at: number }>("job", {
      describe: () => ({ what: "flaky" }),
      run: async (_task, run) => {
        attempts++;
        await run.save({ at: attempts });
        throw new FerryError("TRANSIENT", `try ${attempts}`);
      },
      abandon: (task) => {
        abandoned.push(`${task.id}@${task.checkpoint?.at ?? 0}`);
        return Promise.resolve();
      },
    });
    const { id } = await add("a", {}, { maxAttempts: 2 });
    await r.start();
    const first = await next("task.failed");
    assert.equal((first.payload as { outcome: string }).outcome, "retry");
    assert.equal(attempts, 1);
    // Not before the backoff (1 s after the first failure)...
    clock.advance(900);
    await settle(2);
    assert.equal(attempts, 1);
    const dead = next("task.failed");
    clock.advance(200);
    assert.equal(((await dead).payload as { outcome: string }).outcome, "dead");
    assert.equal(attempts, 2);
    assert.equal((await queue.get(id))?.status, "dead");
    assert.equal((await queue.get(id))?.lastError, "try 2");
    await settle(2);
    assert.deepEqual(abandoned, [`${id}@2`]);
  });

  test("patience `wait`: a Park waits in the queue without spending an attempt", async () => {
    const r = make();
    let runs = 0;
    r.register("job", {
      describe: () => ({ what: "print" }),
      run: () => {
        runs++;
        if (runs === 1) throw new Park("printer is PRINTING", 30_000);
        return Promise.resolve({ bytes: 0 });
      },
    });
    const { id } = await add("a");
    await r.start();
    const parked = await next("task.failed");
    assert.equal((parked.payload as { outcome: string }).outcome, "parked");
    const task = await queue.get(id);
    assert.ok(task);
    assert.equal(task.attempts, 0);
    assert.equal(task.runAt, clock.now() + 30_000);
    const done = next("task.done");
    clock.advance(30_000);
    // Idle workers look again every 500 ms of the clock.
    await settle(2);
    clock.advance(500);
    await done;
    assert.equal(runs, 2);
  });

  test("patience `give-up`: a Park ends as skipped, an away device as dead, and the hook hears both", async () => {
    const held: Held[] = [];
    const r = make({ patience: "give-up", held: (_t, _l, h) => void held.push(h) });
    r.register<{ fail: string }, never>("job", {
      describe: (p) => ({ what: p.fail }),
      run: (task) => {
        if (task.payload.fail === "park")
          throw new Park("printer is PRINTING", 30_000, { wholeDevice: true });
        throw new FerryError("UNAVAILABLE", "printer does not answer");
      },
    });
    await add("a", { fail: "park" });
    await add("b", { fail: "away" });
    await r.drain();
    const done = events.find((e) => e.type === "task.done")?.payload as { skipped?: string };
    assert.equal(done.skipped, "printer is PRINTING");
    const failed = events.find((e) => e.type === "task.failed")?.payload as { outcome: string };
    assert.equal(failed.outcome, "dead");
    assert.deepEqual(
      held.map((h) => [h.why, h.wholeDevice, h.message]),
      [
        ["park", true, "printer is PRINTING"],
        ["away", true, "printer does not answer"],
      ],
    );
  });

  test("a lost lease aborts the handler; the task, returned by the expiry, is claimed afresh", async () => {
    const r = make({ leaseMs: 10_000, heartbeatMs: 2_000 });
    let sawAbort: unknown;
    r.register<object, never>("job", {
      describe: () => ({ what: "long" }),
      run: (_task, run) =>
        new Promise((_resolve, reject) => {
          run.signal.addEventListener("abort", () => {
            sawAbort = run.signal.reason;
            reject(run.signal.reason as Error);
          });
        }),
    });
    const { id } = await add("a");
    await r.start();
    await next("task.started");
    await settle(2); // the heartbeat and the lease expiry wait on the clock
    // Its lease ran out while the node stalled, and another node's expiry took the task back.
    await store.db
      .updateTable("tasks")
      .set({ lease_until: clock.now() - 1 })
      .where("id", "=", id)
      .execute();
    assert.equal(await queue.expireLeases(), 1);
    // The next heartbeat learns it: the handler is aborted, and the old claim settles nothing.
    const again = next("task.started");
    clock.advance(2_000);
    await again;
    assert.equal((sawAbort as Error).name, "LeaseLostError");
    const task = await queue.get(id);
    assert.ok(task);
    assert.equal(task.status, "running");
    assert.equal(task.attempts, 1, "an expired lease counts as an attempt");
    assert.equal(events.filter((e) => e.type === "task.failed" || e.type === "task.done").length, 0);
  });

  test("stop gives a running task back with its checkpoint, no attempt spent; start takes back what a dead node held", async () => {
    const r = make();
    r.register<object, { bytes: number }>("job", {
      describe: () => ({ what: "upload" }),
      run: async (_task, run) => {
        await run.save({ bytes: 42 });
        await new Promise((_resolve, reject) =>
          run.signal.addEventListener("abort", () => reject(new Error("stopped"))),
        );
        return { bytes: 0 };
      },
    });
    const { id } = await add("a");
    await r.start();
    await next("task.started");
    while ((await queue.get(id))?.checkpoint === null) await new Promise((resolve) => setImmediate(resolve));
    await r.stop();
    const task = await queue.get(id);
    assert.deepEqual([task?.status, task?.attempts, task?.checkpoint], ["queued", 0, { bytes: 42 }]);
    assert.equal(r.released, 1);

    // A node that died holding a task (kill -9): its next start releases it at once, checkpoint kept.
    const claimed = await queue.claim("n/7", { leaseMs: 60_000 });
    assert.equal(claimed?.id, id);
    const again = make();
    let resumedFrom: unknown;
    again.register<object, { bytes: number }>("job", {
      describe: () => ({ what: "upload" }),
      run: (_task, run) => {
        resumedFrom = run.checkpoint;
        return Promise.resolve({ bytes: 0 });
      },
    });
    await again.drain();
    assert.deepEqual(resumedFrom, { bytes: 42 });
  });

  test("drain leaves the tasks of paused queues alone and ends", async () => {
    const r = make({ paused: () => ({ queues: ["away"] }) });
    const ran: string[] = [];
    r.register<{ name: string }, never>("job", {
      describe: (p) => ({ what: p.name }),
      run: (task) => {
        ran.push(task.payload.name);
        return Promise.resolve({ bytes: 0 });
      },
    });
    await add("a", { name: "here" });
    await add("b", { name: "there" }, { queue: "away" });
    await r.drain();
    assert.deepEqual(ran, ["here"]);
    const left: Task[] = await queue.list({ status: "queued" });
    assert.deepEqual(
      left.map((t) => t.queue),
      ["away"],
    );
  });
});
