import assert from "node:assert/strict";
import { test } from "node:test";
import { EventBus } from "./events.ts";

test("listeners receive events of their type until unsubscribed", () => {
  const bus = new EventBus<{ a: number; b: string }>();
  const seen: number[] = [];
  const off = bus.on("a", (n) => seen.push(n));
  bus.emit("a", 1);
  bus.emit("b", "ignored");
  off();
  bus.emit("a", 2);
  assert.deepEqual(seen, [1]);
});

test("a throwing listener does not stop the others or the publisher", () => {
  const errors: unknown[] = [];
  const bus = new EventBus<{ a: number }>({ onListenerError: (e) => errors.push(e) });
  const seen: number[] = [];
  bus.on("a", () => {
    throw new Error("boom");
  });
  bus.on("a", (n) => seen.push(n));
  bus.emit("a", 7);
  assert.deepEqual(seen, [7]);
  assert.equal(errors.length, 1);
});
