/**
 * The task list (GET /api/v1/tasks) reads its page in order from an index instead of sorting every
 * task: SQLite's plan of the very query `list` runs, captured on its way to the database. (A
 * PostgreSQL plan depends on its statistics: on a small test table it rightly scans.)
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CompiledQuery, type KyselyPlugin, type RootOperationNode } from "kysely";
import { openStore, type Store } from "../store/store.ts";
import type { TaskFilter } from "./queue.ts";
import { StoreTaskQueue } from "./store-queue.ts";

describe("task list query plans (SQLite)", () => {
  let dir: string;
  let store: Store;
  const seen: { node: RootOperationNode; queryId: { queryId: string } }[] = [];
  const capture: KyselyPlugin = {
    transformQuery: (args) => {
      seen.push({ node: args.node, queryId: args.queryId });
      return args.node;
    },
    transformResult: (args) => Promise.resolve(args.result),
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-task-plans-"));
    store = await openStore({ dataDir: dir });
    // Tasks in every state, so that no filter is empty.
    const queue = new StoreTaskQueue(store);
    for (let i = 0; i < 40; i++)
      await queue.enqueue({ kind: "k", key: `t${i}`, queue: `q${i % 8}`, payload: { i }, priority: i % 3 });
    for (let i = 0; i < 8; i++) {
      const task = await queue.claim("w", { leaseMs: 60_000 });
      assert.ok(task);
      if (i % 3 === 0) await queue.complete(task.id, "w");
      else if (i % 3 === 1) await queue.fail(task.id, "w", { message: "no", retryable: false });
    }
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** SQLite's plan of the query `list(filter)` sends, one detail line per step. */
  async function planOf(filter: TaskFilter & { limit?: number }): Promise<string[]> {
    seen.length = 0;
    const rows = await new StoreTaskQueue({ ...store, db: store.db.withPlugin(capture) }).list(filter);
    assert.ok(rows.length > 0, `the list ${JSON.stringify(filter)} found tasks`);
    const [query] = seen;
    assert.ok(query && seen.length === 1, "list ran one query");
    const compiled = store.db.getExecutor().compileQuery(query.node, query.queryId);
    const plan = await store.db.executeQuery<{ detail: string }>(
      CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
    );
    return plan.rows.map((row) => row.detail);
  }

  const cases: [string, TaskFilter & { limit?: number }, string][] = [
    ["every state", { limit: 100 }, "tasks_list"],
    ["the queued ones", { status: "queued", limit: 100 }, ""],
    ["the running ones", { status: "running", limit: 100 }, "tasks_state_list"],
    ["the dead ones", { status: "dead", limit: 100 }, "tasks_state_list"],
    ["the done ones", { status: "done", limit: 100 }, "tasks_state_list"],
  ];
  for (const [what, filter, index] of cases) {
    it(`lists ${what} in index order, without sorting`, async () => {
      const plan = await planOf(filter);
      assert.ok(
        !plan.some((step) => step.includes("TEMP B-TREE")),
        `no sort in the plan: ${plan.join(" | ")}`,
      );
      assert.ok(
        plan.some((step) => step.includes(`USING INDEX ${index}`)),
        `an index ${index} in the plan: ${plan.join(" | ")}`,
      );
    });
  }
});
