/** The task-queue suite's checks of failures, backoff, park, release, retry and housekeeping. */
import assert from "node:assert/strict";
import { claimOne, LEASE, SECOND, task, type Check } from "./tasks-helpers.ts";

export function describeFailureChecks(check: Check): void {
  check(
    "retryable failures back off 1 s, 2 s, 4 s ... up to 5 min, then the task is dead with its last error",
    async (q, clock) => {
      const { id } = await q.enqueue(task("k", { maxAttempts: 11 }));
      for (let attempt = 1; attempt <= 10; attempt++) {
        const claimed = await claimOne(q);
        assert.equal(claimed.attempts, attempt - 1);
        await q.fail(id, "w1", { message: `failure ${attempt}`, retryable: true, checkpoint: { attempt } });
        const back = await q.get(id);
        const delay = Math.min(300, 2 ** (attempt - 1)) * SECOND;
        assert.deepEqual(
          [back?.status, back?.attempts, back?.runAt, back?.lastError, back?.checkpoint],
          ["queued", attempt, clock.now + delay, `failure ${attempt}`, { attempt }],
          `after failure ${attempt}`,
        );
        clock.advance(delay - 1);
        assert.equal(
          await q.claim("w1", { leaseMs: LEASE }),
          undefined,
          `not before its backoff (${attempt})`,
        );
        clock.advance(1);
      }
      await claimOne(q);
      await q.fail(id, "w1", { message: "failure 11", retryable: true });
      const dead = await q.get(id);
      assert.deepEqual(
        [dead?.status, dead?.attempts, dead?.lastError, dead?.lockedBy, dead?.checkpoint],
        ["dead", 11, "failure 11", null, { attempt: 10 }],
      );
      clock.advance(3_600 * SECOND);
      assert.equal(await q.claim("w1", { leaseMs: LEASE }), undefined, "a dead task is never claimed");
    },
  );

  check("a failure that is not retryable is dead at once", async (q) => {
    const { id } = await q.enqueue(task("k"));
    await claimOne(q);
    await q.fail(id, "w1", { message: "AUTH: wrong password", retryable: false });
    const dead = await q.get(id);
    assert.deepEqual([dead?.status, dead?.attempts, dead?.lastError], ["dead", 1, "AUTH: wrong password"]);
    assert.deepEqual(await q.counts(), { queued: 0, running: 0, done: 0, dead: 1 });
  });

  check("park waits until its runAt without counting an attempt", async (q, clock) => {
    const { id } = await q.enqueue(task("k", { maxAttempts: 1 }));
    for (let i = 0; i < 3; i++) {
      await claimOne(q);
      await q.fail(id, "w1", {
        message: "printer offline",
        retryable: true,
        park: { runAt: clock.now + 60 * SECOND },
        checkpoint: { offset: i },
      });
      const parked = await q.get(id);
      assert.deepEqual(
        [parked?.status, parked?.attempts, parked?.runAt, parked?.checkpoint, parked?.lastError],
        ["queued", 0, clock.now + 60 * SECOND, { offset: i }, "printer offline"],
      );
      assert.equal(await q.claim("w1", { leaseMs: LEASE }), undefined);
      clock.advance(60 * SECOND);
    }
  });

  check("release gives the task back untouched, with a new checkpoint when given", async (q, clock) => {
    const { id } = await q.enqueue(task("k", { runAt: clock.now - 5 }));
    await claimOne(q);
    await q.heartbeat(id, "w1", { leaseMs: LEASE, checkpoint: { offset: 1 } });
    await q.release(id, "w1");
    let back = await q.get(id);
    assert.deepEqual(
      [back?.status, back?.attempts, back?.checkpoint, back?.lockedBy, back?.runAt],
      ["queued", 0, { offset: 1 }, null, clock.now - 5],
    );
    await claimOne(q, "w2");
    await q.release(id, "w2", { offset: 2 });
    back = await q.get(id);
    assert.deepEqual([back?.status, back?.checkpoint], ["queued", { offset: 2 }]);
    assert.equal((await claimOne(q, "w3")).id, id, "claimable again at once");
  });

  check("retry brings dead tasks back with attempts reset", async (q, clock) => {
    const ids: string[] = [];
    for (const key of ["d1", "d2", "d3"]) {
      const { id } = await q.enqueue(task(key, { queue: key }));
      ids.push(id);
      await claimOne(q);
      await q.fail(id, "w1", { message: `${key} broke`, retryable: false });
    }
    const done = (await q.enqueue(task("ok", { queue: "ok" }))).id;
    await claimOne(q);
    await q.complete(done, "w1");
    clock.advance(SECOND);
    assert.equal(await q.retry([ids[0] ?? "", done, "no-such-task"]), 1, "only dead tasks are retried");
    const back = await q.get(ids[0] ?? "");
    assert.deepEqual([back?.status, back?.attempts, back?.runAt], ["queued", 0, clock.now]);
    assert.equal((await q.get(done))?.status, "done");
    assert.equal(await q.retry("all-dead"), 2);
    assert.deepEqual(await q.counts(), { queued: 3, running: 0, done: 1, dead: 0 });
    assert.equal(await q.retry("all-dead"), 0);
  });

  check("a task coming back while a newer task of its key is queued gives way to it", async (q, clock) => {
    const returns: [string, (id: string, worker: string) => Promise<unknown>][] = [
      ["a retryable failure", (id, w) => q.fail(id, w, { message: "x", retryable: true })],
      ["a park", (id, w) => q.fail(id, w, { message: "x", retryable: true, park: { runAt: clock.now } })],
      ["a release", (id, w) => q.release(id, w)],
      [
        "an expired lease",
        async () => {
          clock.advance(LEASE + 1);
          assert.equal(await q.expireLeases(), 1);
        },
      ],
    ];
    for (const [what, giveBack] of returns) {
      const old = await q.enqueue(task(`k-${what}`, { payload: "old" }));
      await claimOne(q);
      const newer = await q.enqueue(task(`k-${what}`, { payload: "new" }));
      await giveBack(old.id, "w1");
      assert.equal(await q.get(old.id), undefined, `${what}: the old task is gone`);
      const next = await claimOne(q);
      assert.deepEqual([next.id, next.payload], [newer.id, "new"], `${what}: the newer task runs`);
      await q.complete(next.id, "w1");
    }
    // A dead task whose key is queued again stays dead.
    const dead = await q.enqueue(task("d"));
    await claimOne(q);
    await q.fail(dead.id, "w1", { message: "x", retryable: false });
    await q.enqueue(task("d"));
    assert.equal(await q.retry("all-dead"), 0);
    assert.equal((await q.get(dead.id))?.status, "dead");
  });

  check("counts and list, overall and per queue", async (q) => {
    for (const [key, queue, priority] of [
      ["a", "A", 0],
      ["b", "A", 3],
      ["c", "B", 1],
      ["d", "B", 0],
    ] as const) {
      await q.enqueue(task(key, { queue, priority }));
    }
    const b = await claimOne(q);
    assert.equal(b.key, "b");
    await q.complete(b.id, "w1");
    await claimOne(q, "w2"); // c (A's "a" has priority 0, c has 1)
    assert.deepEqual(await q.counts(), { queued: 2, running: 1, done: 1, dead: 0 });
    assert.deepEqual(await q.counts({ queues: ["A"] }), { queued: 1, running: 0, done: 1, dead: 0 });
    assert.deepEqual(await q.counts({ queues: ["nope"] }), { queued: 0, running: 0, done: 0, dead: 0 });
    assert.deepEqual(
      (await q.list({})).map((t) => t.key),
      ["b", "c", "a", "d"],
    );
    assert.deepEqual(
      (await q.list({ status: "queued" })).map((t) => t.key),
      ["a", "d"],
    );
    assert.deepEqual(
      (await q.list({ queues: ["B"] })).map((t) => t.key),
      ["c", "d"],
    );
    assert.deepEqual(
      (await q.list({ status: "running", queues: ["B"] })).map((t) => t.lockedBy),
      ["w2"],
    );
    assert.deepEqual(
      (await q.list({ limit: 2 })).map((t) => t.key),
      ["b", "c"],
    );
  });

  check("scopes: lists and counts filter by them, a claim passes over excluded ones", async (q) => {
    await q.enqueue(task("a", { queue: "A", scope: "sync:photos", priority: 2 }));
    await q.enqueue(task("b", { queue: "A", scope: "sync:logs", priority: 1 }));
    await q.enqueue(task("c", { queue: "B" }));
    assert.deepEqual(
      (await q.list({ scope: "sync:photos" })).map((t) => [t.key, t.scope]),
      [["a", "sync:photos"]],
    );
    assert.deepEqual(
      (await q.list({ excludeScopes: ["sync:photos"] })).map((t) => t.key),
      ["b", "c"],
      "a task without a scope is never excluded by one",
    );
    assert.deepEqual(await q.counts({ scope: "sync:logs" }), { queued: 1, running: 0, done: 0, dead: 0 });
    assert.deepEqual((await q.counts({ queues: [] })).queued, 0, "no queue named: nothing");
    // The best task (a) is in an excluded scope: a claim passes over it to b, then to c.
    const first = await q.claim("w1", { leaseMs: LEASE, excludeScopes: ["sync:photos"] });
    assert.equal(first?.key, "b");
    const second = await q.claim("w2", { leaseMs: LEASE, excludeScopes: ["sync:photos"] });
    assert.equal(second?.key, "c");
    assert.equal(await q.claim("w3", { leaseMs: LEASE, excludeScopes: ["sync:photos"] }), undefined);
  });

  check("cancel deletes queued tasks only and says which", async (q) => {
    const queued = await q.enqueue(task("q", { queue: "A" }));
    const running = await q.enqueue(task("r", { queue: "B" }));
    await claimOne(q); // q or r: both priority 0; take whichever and look
    const claimed = (await q.list({ status: "running" }))[0];
    assert.ok(claimed);
    const other = claimed.id === queued.id ? running.id : queued.id;
    assert.deepEqual(await q.cancel([claimed.id, other, "no-such-task"]), [other]);
    assert.equal((await q.get(claimed.id))?.status, "running", "a running task is not cancelled");
    assert.equal(await q.get(other), undefined);
  });

  check("prune deletes done tasks finished before a time, nothing else", async (q, clock) => {
    const old = await q.enqueue(task("old", { queue: "A" }));
    await claimOne(q);
    await q.complete(old.id, "w1");
    const finishedOld = clock.now;
    clock.advance(SECOND);
    const recent = await q.enqueue(task("recent", { queue: "A" }));
    await claimOne(q);
    await q.complete(recent.id, "w1");
    const dead = await q.enqueue(task("dead", { queue: "B" }));
    await claimOne(q);
    await q.fail(dead.id, "w1", { message: "x", retryable: false });
    await q.enqueue(task("queued", { queue: "C", runAt: finishedOld - 10 }));
    assert.equal(await q.prune(finishedOld), 0, "finished at, not before");
    assert.equal(await q.prune(finishedOld + 1), 1);
    assert.equal(await q.get(old.id), undefined);
    assert.deepEqual(await q.counts(), { queued: 1, running: 0, done: 1, dead: 1 });
  });
}
