import assert from "node:assert/strict";
import { test } from "node:test";
import type { AppEvents } from "../app.ts";
import { EventBus } from "../core/events.ts";
import { TemperatureHistory } from "./temperature-history.ts";

const heat = (actual: number) => [{ name: "tool0" as const, actual, target: 215 }];

test("keeps samples a step apart, the newest reading last, none older than an hour", () => {
  let now = 1_000_000;
  const bus = new EventBus<AppEvents>({ node: "test", clock: () => now });
  const history = new TemperatureHistory(bus, { keepMs: 60_000, stepMs: 10_000 });
  const publish = (printer: string, actual: number) =>
    bus.emit("printer.temperatures", { printer, temperatures: heat(actual) });

  for (let second = 0; second <= 25; second++, now += 1000) publish("mk4-a", 20 + second);
  publish("mk4-b", 50);
  const a = history.of("mk4-a", now);
  // One each 10 s (0, 10, 20) and the newest reading (25 s) last.
  assert.deepEqual(
    a.map((s) => [(s.at - 1_000_000) / 1000, s.temperatures[0]?.actual]),
    [
      [0, 20],
      [10, 30],
      [20, 40],
      [25, 45],
    ],
  );
  assert.equal(history.of("mk4-b", now).length, 1, "each printer apart");

  // A minute later the old ones are gone.
  now += 61_000;
  publish("mk4-a", 99);
  assert.deepEqual(
    history.of("mk4-a", now).map((s) => s.temperatures[0]?.actual),
    [99],
  );
  assert.deepEqual(history.of("mk4-b", now), [], "nothing older than keepMs is answered");

  history.forget("mk4-a");
  assert.deepEqual(history.of("mk4-a", now), []);
  history.close();
  publish("mk4-a", 10);
  assert.deepEqual(history.of("mk4-a", now), [], "closed: no longer listening");
});
