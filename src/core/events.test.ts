import assert from "node:assert/strict";
import { test } from "node:test";
import { EventBus, type Envelope } from "./events.ts";

test("listeners receive events of their type until unsubscribed", () => {
  const bus = new EventBus<{ a: number; b: string }>();
  const seen: number[] = [];
  const off = bus.on("a", (e) => seen.push(e.payload));
  bus.emit("a", 1);
  bus.emit("b", "ignored");
  off();
  bus.emit("a", 2);
  assert.deepEqual(seen, [1]);
});

test("every event comes in one envelope: ordered id, time, node, type", () => {
  let now = 1000;
  const bus = new EventBus<{ a: number; b: string }>({ node: "n1", clock: () => now });
  const all: Envelope<{ a: number; b: string }>[] = [];
  bus.onAny((e) => all.push(e));
  bus.emit("a", 1);
  now = 2000;
  bus.emit("b", "x");
  assert.deepEqual(
    all.map(({ at, node, type, payload }) => ({ at, node, type, payload })),
    [
      { at: 1000, node: "n1", type: "a", payload: 1 },
      { at: 2000, node: "n1", type: "b", payload: "x" },
    ],
  );
  assert.ok(all[0] && all[1] && all[0].id < all[1].id, "ids increase");
  assert.notEqual(new EventBus().node, undefined);
});

test("a throwing listener does not stop the others or the publisher", () => {
  const errors: unknown[] = [];
  const bus = new EventBus<{ a: number }>({ onListenerError: (e) => errors.push(e) });
  const seen: number[] = [];
  bus.on("a", () => {
    throw new Error("boom");
  });
  bus.on("a", (e) => seen.push(e.payload));
  bus.emit("a", 7);
  assert.deepEqual(seen, [7]);
  assert.equal(errors.length, 1);
});
