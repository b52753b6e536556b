/**
 * A claim's fallback way (claim-queries.ts, `queueHeads`) reads each free queue's next task through
 * the queue index, never every queued task: SQLite's plan of the very query, with a backlog queued.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CompiledQuery } from "kysely";
import { openMemoryStore, type Store } from "../store/store.ts";
import { choosers } from "./claim-queries.ts";
import { StoreTaskQueue } from "./store-queue.ts";

describe("claim query plans (SQLite)", () => {
  let store: Store;

  before(async () => {
    store = await openMemoryStore();
    const queue = new StoreTaskQueue(store);
    for (let i = 0; i < 400; i++)
      await queue.enqueue({ kind: "k", key: `t${i}`, queue: `q${i % 8}`, payload: { i } });
  });
  after(() => store.close());

  it("looks up each queue's head instead of walking the queued tasks", async () => {
    const [, queueHeads] = choosers({ leaseMs: 60_000, kinds: ["k", "other"] }, Date.now(), false);
    assert.ok(queueHeads);
    const compiled = queueHeads(store.db).compile();
    const plan = await store.db.executeQuery<{ detail: string }>(
      CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
    );
    const steps = plan.rows.map((row) => row.detail);
    assert.match(steps[0] ?? "", /^SCAN q\b/, `the queues are the outer loop: ${steps.join(" | ")}`);
    assert.ok(
      steps.some((step) => /^SEARCH t USING .*\(id=\?\)/.test(step)),
      `each head's task found by its id: ${steps.join(" | ")}`,
    );
    assert.ok(
      steps.some((step) => step.includes("USING INDEX tasks_queue_next (queue=?)")),
      `the head found through the queue index: ${steps.join(" | ")}`,
    );
  });
});
