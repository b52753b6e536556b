import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Semaphore } from "./semaphore.ts";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("Semaphore", () => {
  test("lets at most `limit` run at once, the rest in arrival order", async () => {
    const slots = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const jobs = [0, 1, 2, 3, 4].map((i) =>
      slots.use(async () => {
        running++;
        peak = Math.max(peak, running);
        order.push(i);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
      }),
    );
    for (let i = 0; i < 5; i++) {
      await tick();
      assert.ok(running <= 2, `${running} running`);
      releases.shift()?.();
    }
    await Promise.all(jobs);
    assert.equal(peak, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
  });

  test("frees the slot when the holder fails", async () => {
    const slots = new Semaphore(1);
    await assert.rejects(
      slots.use(() => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(await slots.use(() => Promise.resolve(7)), 7);
  });

  test("a limit below one still lets one run", async () => {
    assert.equal(new Semaphore(0).limit, 1);
    assert.equal(await new Semaphore(0).use(() => Promise.resolve("ok")), "ok");
  });
});
