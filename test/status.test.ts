/** `ferry status` tells waiting from failing, and says why device states are unknown. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { openConfiguredStore } from "../src/app.ts";
import { loadConfig } from "../src/config/index.ts";
import { deviceKinds } from "../src/devices/devices.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-status-"));
  await writeFile(
    join(dir, "ferry.yaml"),
    "data_dir: ./data\ndevices:\n  p: { type: prusalink, url: 'http://127.0.0.1:9', username: maker, password: x }\nsyncs:\n  s: { source: ./in, targets: [./out], mode: copy }\n",
  );
});
after(() => rm(dir, { recursive: true, force: true }));

test("a parked upload is waiting, not a failure; unknown states come with a hint", async () => {
  const config = await loadConfig(join(dir, "ferry.yaml"), { deviceKinds, env: {} });
  const opened = await openConfiguredStore(config);
  const enqueue = (key: string) =>
    opened.queue.enqueue({
      kind: "sync.file",
      key,
      queue: `to:p#${key}`,
      payload: { op: "delete", sync: "s", target: "./out", path: key },
    });
  await enqueue("parked.gcode");
  await enqueue("failing.gcode");
  const parked = await opened.queue.claim("w/1", { leaseMs: 60_000 });
  assert.ok(parked);
  await opened.queue.fail(parked.id, "w/1", {
    message: "printer is PRINTING",
    retryable: true,
    park: { runAt: Date.now() + 60_000 },
  });
  const failing = await opened.queue.claim("w/1", { leaseMs: 60_000 });
  assert.ok(failing);
  await opened.queue.fail(failing.id, "w/1", { message: "connection reset", retryable: true });
  await opened.close();

  const { stdout } = await promisify(execFile)(process.execPath, [cli, "status", "--json"], { cwd: dir });
  const status = JSON.parse(stdout) as {
    waiting: { what: string; lastError: string }[];
    failures: { what: string; lastError: string }[];
    hint?: string;
  };
  assert.deepEqual(
    status.waiting.map((t) => `${t.what}: ${t.lastError}`),
    ["delete parked.gcode: printer is PRINTING"],
  );
  assert.deepEqual(
    status.failures.map((t) => `${t.what}: ${t.lastError}`),
    ["delete failing.gcode: connection reset"],
  );
  assert.match(status.hint ?? "", /ferry serve/);
});
