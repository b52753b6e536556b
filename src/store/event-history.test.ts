import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { testPostgres } from "../../test/servers/postgres.ts";
import { waitFor } from "../../test/support/wait.ts";
import { FakeClock } from "../core/clock.ts";
import { EventBus, type Envelope } from "../core/events.ts";
import type { EngineEvents } from "../sync/events.ts";
import { createEventHistory, deviceOf, type RecordedEvent } from "./event-history.ts";
import { dialects } from "./test-support.ts";

const pg = await testPostgres();
after(() => pg.close());

const ref = { id: "t1", kind: "sync.file", what: "send a.gcode", sync: "farm", path: "a.gcode" };
const DAY = 86_400_000;

function note(i: number, target = "mk4-a"): ["sync.note", EngineEvents["sync.note"]] {
  return ["sync.note", { sync: "farm", target, note: `note ${i}` }];
}

for (const dialect of dialects(pg)) {
  describe(`event history on ${dialect.label}`, () => {
    after(() => dialect.cleanup());

    test(
      "records every event but task.progress, in order, with increasing ids and the device it concerns",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const bus = new EventBus<EngineEvents>({ node: "farm-pc:/srv/ferry" });
        const published: Envelope<EngineEvents>[] = [];
        bus.onAny((envelope) => published.push(envelope));
        const history = await createEventHistory(store, bus);
        const batches: (readonly RecordedEvent[])[] = [];
        history.subscribe((batch) => batches.push(batch));

        bus.emit("device.state", { device: "mk4-a", state: "online", detail: "PrusaLink 2.1.2", since: 1 });
        bus.emit("task.started", { ...ref, target: "mk4-a:models" });
        bus.emit("task.progress", { ...ref, target: "mk4-a:models", bytes: 100 });
        bus.emit("task.done", { ...ref, target: "./backup", bytes: 100, ms: 5 });
        bus.emit("sync.note", { sync: "farm", target: "mk4-b", note: "checksums fell back to sizes" });
        bus.emit("engine.started", { syncs: ["farm"], devices: ["mk4-a", "mk4-b"] });
        bus.emit("task.failed", {
          ...ref,
          target: "source",
          code: "UNAVAILABLE",
          error: "gone",
          outcome: "retry",
        });
        await history.flush();

        const rows = await history.since(0, {}, 100);
        const recorded = published.filter((e) => e.type !== "task.progress");
        assert.deepEqual(
          rows.map((r) => JSON.parse(r.data) as unknown),
          recorded.map((e) => JSON.parse(JSON.stringify(e)) as unknown),
          "each row's data is the envelope as published",
        );
        assert.deepEqual(
          rows.map((r) => r.device),
          ["mk4-a", "mk4-a", null, "mk4-b", null, null],
        );
        const ids = rows.map((r) => r.id ?? -1);
        assert.ok(
          ids.every((id, i) => id > 0 && (i === 0 || id > (ids[i - 1] ?? 0))),
          `ids increase: ${ids.join(",")}`,
        );

        // Subscribers get everything, in the bus's order, the live-only event without an id.
        const delivered = batches.flat();
        assert.deepEqual(
          delivered.map((e) => e.eventId),
          published.map((e) => e.id),
        );
        assert.deepEqual(
          delivered.map((e) => e.id),
          [ids[0], ids[1], undefined, ...ids.slice(2)],
        );
        assert.equal(delivered[2]?.data, JSON.stringify(published[2]));
        await history.close();
      },
    );

    test(
      "writes on its own shortly after events come, in batches, and close() writes what waits",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const bus = new EventBus<EngineEvents>();
        const history = await createEventHistory(store, bus, { batchSize: 100 });
        const batches: number[] = [];
        history.subscribe((batch) => batches.push(batch.length));
        for (let i = 0; i < 3; i++) bus.emit(...note(i));
        await waitFor("the timer to write three events", () => batches.length > 0);
        assert.deepEqual(batches, [3]);

        for (let i = 0; i < 1_050; i++) bus.emit(...note(i));
        await history.flush();
        assert.equal(
          batches.reduce((a, b) => a + b),
          1_053,
        );
        assert.ok(
          batches.every((n) => n <= 100),
          `no batch beyond 100: ${batches.join(",")}`,
        );
        bus.emit(...note(2_000));
        await history.close();
        const rows = await history.since(0, {}, 2_000);
        assert.equal(rows.length, 1_054);
        assert.match(rows.at(-1)?.data ?? "", /note 2000/);
        bus.emit(...note(3_000));
        assert.equal((await history.since(0, {}, 2_000)).length, 1_054, "a closed history records nothing");
      },
    );

    test("since() filters by type, type prefix, device, node and task", dialect.testOptions, async () => {
      const store = await dialect.open();
      const a = new EventBus<EngineEvents>({ node: "a" });
      const b = new EventBus<EngineEvents>({ node: "b" });
      const historyA = await createEventHistory(store, a);
      const historyB = await createEventHistory(store, b);
      // Each written before the next is published: across nodes, ids follow the writes.
      a.emit("device.state", { device: "mk4-a", state: "offline", detail: "refused", since: 1 });
      await historyA.flush();
      b.emit("device.state", { device: "mk4-b", state: "online", detail: "", since: 1 });
      await historyB.flush();
      a.emit("task.done", { ...ref, target: "mk4-b:models", bytes: 1, ms: 1 });
      a.emit("sync.note", { sync: "farm", target: "mk4-a", note: "n" });
      await historyA.flush();
      b.emit("task.failed", { ...ref, target: "mk4-a", code: "BUSY", error: "printing", outcome: "parked" });
      await historyB.flush();
      const what = async (filter: Parameters<typeof historyA.since>[1]) =>
        (await historyA.since(0, filter, 100)).map((r) => `${r.node}/${r.type}/${r.device ?? "-"}`);
      assert.deepEqual(await what({}), [
        "a/device.state/mk4-a",
        "b/device.state/mk4-b",
        "a/task.done/mk4-b",
        "a/sync.note/mk4-a",
        "b/task.failed/mk4-a",
      ]);
      assert.deepEqual(await what({ types: ["task.*", "sync.note"] }), [
        "a/task.done/mk4-b",
        "a/sync.note/mk4-a",
        "b/task.failed/mk4-a",
      ]);
      assert.deepEqual(await what({ devices: ["mk4-a"] }), [
        "a/device.state/mk4-a",
        "a/sync.note/mk4-a",
        "b/task.failed/mk4-a",
      ]);
      assert.deepEqual(await what({ node: "a", types: ["device.*"] }), ["a/device.state/mk4-a"]);
      assert.deepEqual(
        await what({ task: "t1" }),
        ["a/task.done/mk4-b", "b/task.failed/mk4-a"],
        "a task's history",
      );
      assert.deepEqual(await what({ task: "t2" }), []);
      const all = await historyA.since(0, {}, 100);
      const second = all[1]?.id ?? 0;
      assert.deepEqual(
        (await historyA.since(second, {}, 2)).map((r) => r.id),
        all.slice(2, 4).map((r) => r.id),
        "after an id, at most the limit",
      );
      await Promise.all([historyA.close(), historyB.close()]);
    });

    test(
      "keeps the newest N and remembers the newest id it pruned; ids are never reused",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const bus = new EventBus<EngineEvents>();
        // pruneMs far off: this test prunes when it says so.
        const history = await createEventHistory(store, bus, { keep: 10, pruneMs: DAY });
        for (let i = 0; i < 25; i++) bus.emit(...note(i));
        await history.flush();
        const before = await history.since(0, {}, 100);
        assert.equal(await history.prune(), before.length - 10);
        const kept = await history.since(0, {}, 100);
        assert.deepEqual(
          kept.map((r) => r.id),
          before.slice(-10).map((r) => r.id),
        );
        assert.deepEqual(await history.horizon(), {
          prunedThrough: before.at(-11)?.id,
          newest: before.at(-1)?.id,
        });
        assert.equal(await history.prune(), 0, "nothing more to prune");
        await history.close();
      },
    );

    test(
      "keeps no event older than keepDays, and an emptied table goes on from its last id",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const clock = new FakeClock();
        const bus = new EventBus<EngineEvents>({ clock: () => clock.now() });
        const history = await createEventHistory(store, bus, { keepDays: 7, clock, pruneMs: DAY * 30 });
        for (let i = 0; i < 5; i++) bus.emit(...note(i));
        await history.flush();
        clock.advance(6 * DAY);
        for (let i = 5; i < 8; i++) bus.emit(...note(i));
        await history.flush();
        const before = await history.since(0, {}, 100);
        clock.advance(2 * DAY);
        assert.equal(await history.prune(), 5, "the five of eight days ago");
        assert.deepEqual(
          (await history.since(0, {}, 100)).map((r) => r.id),
          before.slice(5).map((r) => r.id),
        );
        clock.advance(7 * DAY);
        assert.equal(await history.prune(), 3);
        assert.deepEqual(await history.since(0, {}, 100), []);
        const last = before.at(-1)?.id ?? 0;
        assert.deepEqual(await history.horizon(), { prunedThrough: last, newest: last });
        bus.emit(...note(9));
        await history.flush();
        const [next] = await history.since(0, {}, 100);
        assert.ok((next?.id ?? 0) > last, `the next id ${next?.id} comes after ${last}`);
        await history.close();
      },
    );

    test("a new history prunes what its bounds no longer keep at start", dialect.testOptions, async () => {
      const store = await dialect.open();
      const bus = new EventBus<EngineEvents>();
      const first = await createEventHistory(store, bus, { keep: 1_000 });
      for (let i = 0; i < 30; i++) bus.emit(...note(i));
      await first.close();
      const second = await createEventHistory(store, bus, { keep: 4 });
      assert.equal((await second.since(0, {}, 100)).length, 4);
      await second.close();
    });
  });
}

test("deviceOf: payload device, else printer, else the device of a target label", () => {
  assert.equal(deviceOf({ device: "mk4-a", target: "mk4-b" }), "mk4-a");
  assert.equal(deviceOf({ printer: "mk4-c", id: "j1" }), "mk4-c");
  assert.equal(deviceOf({ target: "mk4-b" }), "mk4-b");
  assert.equal(deviceOf({ target: "mk4-b:models/sub" }), "mk4-b");
  for (const target of ["./backup", "../out", "/srv/outbox", "~/out", "~", "source"]) {
    assert.equal(deviceOf({ target }), null, target);
  }
  assert.equal(deviceOf({ syncs: [] }), null);
  assert.equal(deviceOf(null), null);
  assert.equal(deviceOf("mk4-a"), null);
});

test("options are checked", async () => {
  const { openMemoryStore } = await import("./store.ts");
  const store = await openMemoryStore();
  await assert.rejects(
    createEventHistory(store, new EventBus<EngineEvents>(), { keep: 0 }),
    /event history option keep must be a positive number, not 0/,
  );
  await store.close();
});
