/**
 * The ingest pacer on a fake clock: what it lets through per tick, exactly, with no wall-clock
 * timing (the wire test in sim.test.ts only checks that a real upload is never faster).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Pacer, type PacerTimer } from "./pacer.ts";

const CHUNK = 64 * 1024;

/** A clock that moves only when the pacer sleeps (each sleep overshooting by `overshootMs`) or the test says. */
function fakeTimer(overshootMs = 0): PacerTimer & { t: number; sleeps: number } {
  const timer = {
    t: 0,
    sleeps: 0,
    now: () => timer.t,
    sleep: (ms: number) => {
      timer.sleeps++;
      timer.t += ms + overshootMs;
      return Promise.resolve();
    },
  };
  return timer;
}

/** Feeds `total` bytes to the pacer in 64 KiB chunks, as an upload does. */
async function feed(pacer: Pacer, total: number): Promise<void> {
  for (let taken = 0; taken < total; taken += CHUNK) await pacer.take(Math.min(CHUNK, total - taken));
}

void describe("ingest pacer", () => {
  void test("never runs ahead of the rate, and takes exactly size/rate on exact timers", async () => {
    const timer = fakeTimer();
    const pacer = new Pacer(1_000_000, timer);
    let taken = 0;
    for (let i = 0; i < 32; i++) {
      await pacer.take(CHUNK);
      taken += CHUNK;
      // After each chunk's wait, the clock has paid for every byte taken so far.
      assert.ok(timer.t * 1000 >= taken - 1e-6, `${taken} bytes taken by ${timer.t} ms`);
    }
    assert.ok(Math.abs(timer.t - (32 * CHUNK) / 1000) < 1e-6, `took ${timer.t} ms`);
  });

  void test("late timers do not add up: a slow event loop loses at most one overshoot", async () => {
    const timer = fakeTimer(5);
    await feed(new Pacer(1_000_000, timer), 2_000_000);
    assert.ok(timer.t >= 2000, `took ${timer.t} ms`);
    assert.ok(timer.t <= 2000 + 5 + 1e-6, `took ${timer.t} ms: overshoot accumulated`);
  });

  void test("an idle pause earns a quarter second of credit, no more", async () => {
    const timer = fakeTimer();
    const pacer = new Pacer(1_000_000, timer);
    await feed(pacer, 4 * CHUNK);
    timer.t += 10_000;
    const before = timer.t;
    await feed(pacer, 1_000_000);
    // 250 kB of credit, then 750 kB at the rate.
    assert.ok(Math.abs(timer.t - before - 750) < 1e-6, `took ${timer.t - before} ms`);
  });

  void test("a pacer starts empty: the first chunk already waits", async () => {
    const timer = fakeTimer();
    await new Pacer(1_000_000, timer).take(CHUNK);
    assert.equal(timer.sleeps, 1);
    assert.ok(Math.abs(timer.t - CHUNK / 1000) < 1e-6);
  });
});
