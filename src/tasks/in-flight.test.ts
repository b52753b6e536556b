import assert from "node:assert/strict";
import { test } from "node:test";
import { EventBus } from "../core/events.ts";
import type { TaskEvents } from "./events.ts";
import { InFlightTasks } from "./in-flight.ts";

test("in-flight tasks: bytes, a smoothed rate and the time left, gone when they end", () => {
  let now = 1_000_000;
  const bus = new EventBus<TaskEvents>({ clock: () => now });
  const tasks = new InFlightTasks(bus);
  const ref = { id: "t1", kind: "file", what: "upload a.gcode", path: "a.gcode", size: 10_000_000 };
  bus.emit("task.started", ref);
  assert.deepEqual(
    tasks.list().map((t) => [t.id, t.bytes, t.rate, t.etaS, t.startedAt]),
    [["t1", 0, null, null, 1_000_000]],
  );
  now += 1000;
  bus.emit("task.progress", { ...ref, bytes: 1_000_000 });
  assert.deepEqual(
    tasks.list().map((t) => [t.bytes, t.rate, t.etaS]),
    [[1_000_000, 1_000_000, 9]],
  );
  // Twice as fast for a second: the rate moves toward it, not all the way.
  now += 1000;
  bus.emit("task.progress", { ...ref, bytes: 3_000_000 });
  const rate = tasks.list()[0]?.rate ?? 0;
  assert.ok(rate > 1_000_000 && rate < 2_000_000, `rate ${rate}`);
  assert.equal(tasks.list()[0]?.etaS, 7_000_000 / rate);
  bus.emit("task.done", { ...ref, bytes: 10_000_000, ms: 5000 });
  assert.deepEqual(tasks.list(), []);
  bus.emit("task.progress", { ...ref, bytes: 1 });
  assert.deepEqual(tasks.list(), [], "a late report of an ended task is ignored");
  tasks.close();
});
