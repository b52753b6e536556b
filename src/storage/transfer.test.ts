import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { silentLogger } from "../core/logger.ts";
import type { StorageAdapter } from "./adapter.ts";
import { localAdapter } from "./local/local.ts";
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

test("an upload given up by its target, then aborted at stop, ends quietly (no unhandled stream error)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ferry-transfer-abort-"));
  try {
    const context = (name: string) => ({ name, logger: silentLogger, baseDir: dir });
    const source = localAdapter.create({ path: dir }, context("abort-source"));
    const size = 4 * 1024 * 1024;
    await writeFile(join(dir, "big.gcode"), Buffer.alloc(size, 1));
    const inner = memoryAdapter.create({}, context("abort-target"));
    const target: StorageAdapter = Object.create(inner) as StorageAdapter;
    // A printer that refuses at once, without reading the body.
    target.write = () => Promise.reject(new Error("refused before reading"));
    const stop = new AbortController();
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      await assert.rejects(
        sendFile(
          source,
          target,
          { path: "big.gcode", targetPath: "big.gcode", size },
          { signal: stop.signal },
        ),
        /refused before reading/,
      );
      stop.abort(new Error("Ferry is stopping"));
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    assert.deepEqual(uncaught, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a source file opened already is what is sent: it is not read again", async () => {
  const context = (name: string) => ({ name, logger: silentLogger, baseDir: "/" });
  const source = memoryAdapter.create({}, context("opened-source"));
  const target = memoryAdapter.create({}, context("opened-target"));
  await source.write("a.gcode", Readable.from([Buffer.from("on disk")]), { size: 7 });
  const reads: string[] = [];
  const counted: StorageAdapter = Object.create(source) as StorageAdapter;
  counted.read = (path, options) => {
    reads.push(path);
    return source.read(path, options);
  };
  await sendFile(
    counted,
    target,
    { path: "a.gcode", targetPath: "b.gcode", size: 6 },
    { opened: Readable.from([Buffer.from("opened")]) },
  );
  assert.deepEqual(reads, []);
  assert.equal(Buffer.concat(await (await target.read("b.gcode")).toArray()).toString(), "opened");
});
