import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { silentLogger } from "../core/logger.ts";
import type { StorageAdapter } from "./adapter.ts";
import { memoryAdapter } from "./memory/memory.ts";
import { sendFile } from "./transfer.ts";

test("progress counts what the target took: never the whole file before the target confirms it", async () => {
  const context = (name: string) => ({ name, logger: silentLogger, baseDir: "/" });
  const source = memoryAdapter.create({}, context("progress-source"));
  const size = 1024 * 1024;
  await source.write("big.gcode", Readable.from([Buffer.alloc(size, 1)]), { size });
  // A slow printer: it has read every byte, but answers only when the test lets it.
  const inner = memoryAdapter.create({}, context("progress-target"));
  let confirm: () => void = () => undefined;
  const confirmed = new Promise<void>((resolve) => (confirm = resolve));
  const target: StorageAdapter = Object.create(inner) as StorageAdapter;
  const read: number[] = [];
  target.write = async (path, body, options) => {
    const stored = await inner.write(path, body, options);
    read.push(size);
    await confirmed;
    return stored;
  };
  const seen: number[] = [];
  const sending = sendFile(
    source,
    target,
    { path: "big.gcode", targetPath: "big.gcode", size },
    {
      onProgress: (bytes) => seen.push(bytes),
    },
  );
  while (read.length === 0) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(seen.length > 0);
  assert.ok(
    Math.max(...seen) < size,
    `progress reached ${Math.max(...seen)} of ${size} before the target confirmed`,
  );
  confirm();
  await sending;
  assert.equal(seen.at(-1), size);
});
