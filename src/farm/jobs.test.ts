import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { testPostgres } from "../../test/servers/postgres.ts";
import { isFerryError } from "../core/errors.ts";
import { EventBus } from "../core/events.ts";
import { dialects } from "../store/test-support.ts";
import type { FarmEvents } from "./events.ts";
import { Jobs, type NewJob } from "./jobs.ts";
import { PrinterStates } from "./printer-states.ts";
import { JOB_STATES, TRANSITIONS } from "./states.ts";

const pg = await testPostgres();
after(() => pg.close());

const benchy: NewJob = {
  file: { id: "f-1", name: "benchy.gcode", sha256: "ab".repeat(32) },
  owner: "ann",
  priority: 0,
  tags: ["PETG"],
  state: "queued",
};

async function rejectsConflict(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isFerryError(error, "CONFLICT"), `expected CONFLICT, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

for (const dialect of dialects(pg)) {
  describe(`farm jobs on ${dialect.label}`, () => {
    after(() => dialect.cleanup());
    let now = 1_800_000_000_000;
    const clock = () => now;

    test(
      "N copies become N jobs of one order, each with its first history row",
      dialect.testOptions,
      async () => {
        const bus = new EventBus<FarmEvents>();
        const seen: string[] = [];
        bus.on("job.state", ({ payload }) =>
          seen.push(`${payload.id}:${String(payload.from)}→${payload.to}`),
        );
        const jobs = new Jobs(await dialect.open(), { clock, bus });
        const order = await jobs.create([benchy, benchy, { ...benchy, state: "pending_approval" }], "ann");
        assert.equal(order.length, 3);
        assert.equal(new Set(order.map((j) => j.orderId)).size, 1, "one order");
        assert.equal(new Set(order.map((j) => j.id)).size, 3);
        assert.deepEqual(
          order.map((j) => j.state),
          ["queued", "queued", "pending_approval"],
        );
        const [first] = order;
        assert.ok(first);
        assert.deepEqual(await jobs.require(first.id), first);
        assert.deepEqual(first.tags, ["PETG"]);
        assert.deepEqual(await jobs.history(first.id), [
          { jobId: first.id, seq: 1, from: null, to: "queued", actor: "ann", at: now, reason: null },
        ]);
        assert.deepEqual(
          seen,
          order.map((j) => `${j.id}:null→${j.state}`),
        );
        assert.equal((await jobs.list({ orderId: first.orderId })).length, 3);
        assert.equal((await jobs.list({ state: "pending_approval" })).length, 1);
      },
    );

    test(
      "a job goes the whole way, each step a history row with actor, time and reason",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const jobs = new Jobs(store, { clock });
        const beds = new PrinterStates(store, { clock });
        const [job] = await jobs.create([{ ...benchy, state: "pending_approval" }], "ann");
        assert.ok(job);
        const steps: [Parameters<Jobs["transition"]>[1], string, string?][] = [
          ["queued", "olga", "approved"],
          ["scheduled", "scheduler"],
          ["uploading", "node-1"],
          ["printing", "node-1"],
          ["paused", "node-1", "paused at the printer"],
          ["printing", "node-1"],
          ["printed", "node-1"],
          ["completed", "olga", "bed cleared"],
        ];
        for (const [to, actor, reason] of steps) {
          now += 1000;
          const set = to === "scheduled" ? { printer: "mk4-a" } : {};
          const moved = await jobs.transition(job.id, to, { actor, ...(reason ? { reason } : {}), set });
          assert.equal(moved.state, to);
          if (to === "printing")
            assert.equal((await beds.get("mk4-a")).bedClear, false, "a print takes the bed");
        }
        const history = await jobs.history(job.id);
        assert.deepEqual(
          history.map((h) => [h.seq, h.from, h.to, h.actor, h.reason]),
          [
            [1, null, "pending_approval", "ann", null],
            [2, "pending_approval", "queued", "olga", "approved"],
            [3, "queued", "scheduled", "scheduler", null],
            [4, "scheduled", "uploading", "node-1", null],
            [5, "uploading", "printing", "node-1", null],
            [6, "printing", "paused", "node-1", "paused at the printer"],
            [7, "paused", "printing", "node-1", null],
            [8, "printing", "printed", "node-1", null],
            [9, "printed", "completed", "olga", "bed cleared"],
          ],
        );
        assert.ok(
          history.every((h, i) => i === 0 || h.at > (history[i - 1]?.at ?? 0)),
          "times rise",
        );
        const done = await jobs.require(job.id);
        assert.equal(done.progress, 1);
        assert.ok(done.startedAt !== null && done.finishedAt !== null && done.finishedAt > done.startedAt);
        assert.equal((await beds.get("mk4-a")).bedClear, true, "completed: the bed is clear");
        assert.equal((await beds.get("mk4-a")).bedChangedBy, "olga");
      },
    );

    test(
      "every illegal transition is a CONFLICT naming the state; nothing is written",
      dialect.testOptions,
      async () => {
        const jobs = new Jobs(await dialect.open(), { clock });
        const [job] = await jobs.create([benchy], "ann");
        assert.ok(job);
        for (const to of JOB_STATES) {
          if (TRANSITIONS.queued.includes(to)) continue;
          await rejectsConflict(
            jobs.transition(job.id, to, { actor: "x" }),
            new RegExp(`job ${job.id} is queued; it cannot become ${to}`),
          );
        }
        await rejectsConflict(
          jobs.transition(job.id, "cancelled", { actor: "x", expect: "printing" }),
          /is queued, not printing/,
        );
        assert.equal((await jobs.history(job.id)).length, 1);
        assert.equal((await jobs.require(job.id)).state, "queued");
        await assert.rejects(jobs.transition("j-none", "queued", { actor: "x" }), (e: unknown) =>
          isFerryError(e, "NOT_FOUND"),
        );
      },
    );

    test(
      "two nodes moving one job at once: one wins, the other gets CONFLICT",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const a = new Jobs(store, { clock });
        const b = new Jobs(store, { clock });
        for (let round = 0; round < 5; round++) {
          const [job] = await a.create([benchy], "ann");
          assert.ok(job);
          const results = await Promise.allSettled([
            a.transition(job.id, "scheduled", {
              actor: "node-a",
              expect: "queued",
              set: { printer: `p-${round}-a` },
            }),
            b.transition(job.id, "cancelled", { actor: "node-b", expect: "queued" }),
          ]);
          assert.equal(results.filter((r) => r.status === "fulfilled").length, 1, JSON.stringify(results));
          const lost = results.find((r) => r.status === "rejected");
          assert.ok(
            lost && isFerryError(lost.reason, "CONFLICT"),
            String(lost?.status === "rejected" && lost.reason),
          );
          assert.equal((await a.history(job.id)).length, 2, "one history row for the one move");
        }
      },
    );

    test(
      "a failed job goes back to the queue as a new run; nothing else is re-queued from a final state",
      dialect.testOptions,
      async () => {
        const jobs = new Jobs(await dialect.open(), { clock });
        const [job] = await jobs.create([benchy], "ann");
        assert.ok(job);
        await jobs.transition(job.id, "scheduled", { actor: "scheduler", set: { printer: "mk4-r" } });
        await jobs.transition(job.id, "uploading", {
          actor: "ferry",
          set: { printerPath: "ferry/benchy.gcode" },
        });
        await jobs.transition(job.id, "printing", { actor: "printer mk4-r", set: { printerJobId: "7" } });
        await jobs.transition(job.id, "failed", { actor: "printer mk4-r", reason: "thermal runaway" });
        now += 1_000;
        const again = await jobs.transition(job.id, "queued", {
          actor: "olga",
          expect: "failed",
          reason: "requeued",
        });
        assert.equal(again.state, "queued");
        assert.deepEqual(
          [again.printer, again.printerJobId, again.printerPath, again.startedAt, again.finishedAt],
          [null, null, null, null, null],
        );
        const stored = await jobs.require(job.id);
        assert.deepEqual([stored.printer, stored.startedAt, stored.finishedAt], [null, null, null]);
        assert.deepEqual((await jobs.queued()).map((j) => j.id).includes(job.id), true);
        const last = (await jobs.history(job.id)).at(-1);
        assert.deepEqual(
          [last?.seq, last?.from, last?.to, last?.actor, last?.at],
          [6, "failed", "queued", "olga", now],
        );
        for (const final of ["completed", "cancelled"] as const) assert.deepEqual(TRANSITIONS[final], []);
      },
    );

    test("a printer holds one job at a time, whoever assigns it", dialect.testOptions, async () => {
      const jobs = new Jobs(await dialect.open(), { clock });
      const [one, two] = await jobs.create([benchy, benchy], "ann");
      assert.ok(one && two);
      await jobs.transition(one.id, "scheduled", { actor: "s", set: { printer: "mk4-a" } });
      await rejectsConflict(
        jobs.transition(two.id, "scheduled", { actor: "s", set: { printer: "mk4-a" } }),
        /printer mk4-a has a job already/,
      );
      assert.equal((await jobs.require(two.id)).state, "queued");
      assert.equal((await jobs.current("mk4-a"))?.id, one.id);
      // Back to the queue: the printer is free, and the job keeps nothing of it.
      await jobs.update(one.id, "scheduled", { printerPath: "ferry/benchy.gcode" });
      const back = await jobs.transition(one.id, "queued", { actor: "node", reason: "mk4-a went offline" });
      assert.equal(back.printer, null);
      assert.equal(back.printerPath, null);
      assert.equal(await jobs.current("mk4-a"), undefined);
      await jobs.transition(two.id, "scheduled", { actor: "s", set: { printer: "mk4-a" } });
      assert.deepEqual(
        (await jobs.queued()).map((j) => j.id),
        [one.id],
      );
    });

    test("queued jobs come by priority, then age; a start is claimed once", dialect.testOptions, async () => {
      const jobs = new Jobs(await dialect.open(), { clock });
      const [old] = await jobs.create([benchy], "ann");
      now += 1000;
      const [urgent] = await jobs.create([{ ...benchy, priority: 5 }], "bob");
      now += 1000;
      const [young] = await jobs.create([benchy], "cid");
      assert.ok(old && urgent && young);
      const queued = (await jobs.queued()).map((j) => j.id);
      assert.deepEqual(
        queued.filter((id) => [old.id, urgent.id, young.id].includes(id)),
        [urgent.id, old.id, young.id],
      );
      await jobs.transition(old.id, "scheduled", { actor: "s", set: { printer: "mk4-z" } });
      assert.equal(await jobs.claimStart(old.id), false, "not while scheduled");
      await jobs.transition(old.id, "uploading", { actor: "s" });
      const claims = await Promise.all([jobs.claimStart(old.id), jobs.claimStart(old.id)]);
      assert.deepEqual(claims.sort(), [false, true]);
    });

    test(
      "a printer lease: held by one node, taken over once expired, given up on stop",
      dialect.testOptions,
      async () => {
        const states = new PrinterStates(await dialect.open(), { clock });
        assert.equal(await states.acquire("mk4-a", "node-a", 10_000), true);
        assert.equal(await states.acquire("mk4-a", "node-b", 10_000), false);
        now += 5_000;
        assert.equal(await states.acquire("mk4-a", "node-a", 10_000), true, "renewed");
        now += 9_000;
        assert.equal(await states.acquire("mk4-a", "node-b", 10_000), false, "renewal counts");
        now += 2_000;
        assert.equal(await states.acquire("mk4-a", "node-b", 10_000), true, "expired: taken over");
        assert.equal((await states.get("mk4-a")).leaseHolder, "node-b");
        await states.release("mk4-a", "node-a");
        assert.equal((await states.get("mk4-a")).leaseHolder, "node-b", "only the holder releases");
        await states.release("mk4-a", "node-b");
        assert.equal(await states.acquire("mk4-a", "node-a", 10_000), true);
        const raced = await Promise.all([
          states.acquire("mk4-b", "node-a", 10_000),
          states.acquire("mk4-b", "node-b", 10_000),
        ]);
        assert.deepEqual(raced.sort(), [false, true], "two nodes at once: one lease");
        await states.setMaintenance("mk4-a", "nozzle swap", "olga");
        assert.deepEqual((await states.get("mk4-a")).maintenance, {
          reason: "nozzle swap",
          by: "olga",
          at: now,
        });
        await states.setMaintenance("mk4-a", null, "olga");
        assert.equal((await states.get("mk4-a")).maintenance, null);
        assert.equal(
          (await states.get("never-seen")).bedClear,
          false,
          "a bed nobody marked is not known to be clear",
        );
      },
    );
  });
}
