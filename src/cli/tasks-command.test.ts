/** `ferry tasks retry ID...` says which ids it did not retry and why; an unknown id is exit 1. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { openStore } from "../store/store.ts";
import { StoreTaskQueue } from "../tasks/store-queue.ts";

const cli = new URL("../../bin/ferry.js", import.meta.url).pathname;

let dir: string;
let config: string;
let deadId: string;
let queuedId: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-tasks-cli-"));
  config = join(dir, "ferry.yaml");
  await writeFile(config, "data_dir: ./data\n");
  const store = await openStore({ dataDir: join(dir, "data") });
  try {
    const queue = new StoreTaskQueue(store);
    const task = (key: string, priority: number) => ({
      kind: "test",
      key,
      queue: key,
      payload: {},
      priority,
    });
    deadId = (await queue.enqueue(task("a", 1))).id;
    queuedId = (await queue.enqueue(task("b", 0))).id;
    const claimed = await queue.claim("test", { leaseMs: 60_000 });
    assert.equal(claimed?.id, deadId);
    await queue.fail(deadId, "test", { message: "refused", retryable: false });
    assert.equal((await queue.get(deadId))?.status, "dead");
  } finally {
    await store.close();
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function ferry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [cli, ...args, "-c", config]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: unknown) => error as { code: number; stdout: string; stderr: string },
  );
}

describe("ferry tasks retry", () => {
  it("names an unknown id and exits 1", async () => {
    const result = await ferry("tasks", "retry", "123abc");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /unknown task id\(s\): 123abc\b/);
    assert.equal(result.stdout, "0 task(s) queued again\n");
  });

  it("names a task that is not dead, retries the dead one, and exits 1 for the unknown one", async () => {
    const result = await ferry("tasks", "retry", queuedId, deadId, "123abc");
    assert.equal(result.code, 1);
    assert.ok(result.stderr.includes(`task ${queuedId} is queued, not dead`), result.stderr);
    assert.match(result.stderr, /unknown task id\(s\): 123abc\b/);
    assert.equal(result.stdout, "1 task(s) queued again\n");
    const store = await openStore({ dataDir: join(dir, "data") });
    try {
      assert.equal((await new StoreTaskQueue(store).get(deadId))?.status, "queued");
    } finally {
      await store.close();
    }
  });

  it("exits 0 when every id is known, even if none was dead", async () => {
    const result = await ferry("tasks", "retry", queuedId);
    assert.equal(result.code, 0);
    assert.ok(result.stderr.includes(`task ${queuedId} is queued, not dead`), result.stderr);
    assert.equal(result.stdout, "0 task(s) queued again\n");
  });
});
