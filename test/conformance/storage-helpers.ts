/** Small tools of the storage conformance suite: sources, read-backs and error expectations. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { isFerryError, type ErrorCode, type FerryError } from "../../src/core/errors.ts";
import type { Entry, StorageAdapter, WriteOptions } from "../../src/storage/adapter.ts";

const CHUNK = 64 * 1024;

/** A byte stream of `data` in 64 KiB chunks. */
export function sourceOf(data: Uint8Array): Readable {
  function* chunks() {
    for (let at = 0; at < data.length; at += CHUNK) yield data.subarray(at, at + CHUNK);
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Writes `data` to `path`, declaring its true size unless `size` says otherwise. */
export function put(
  adapter: StorageAdapter,
  path: string,
  data: Uint8Array,
  options: Partial<WriteOptions> = {},
): Promise<Entry> {
  return adapter.write(path, sourceOf(data), { size: data.length, ...options });
}

export async function readAll(adapter: StorageAdapter, path: string, offset?: number): Promise<Buffer> {
  const stream = await adapter.read(path, offset === undefined ? {} : { offset });
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The entries of `dir`, or none when the folder does not exist. */
export async function listOrNone(adapter: StorageAdapter, dir: string): Promise<Entry[]> {
  try {
    return await collect(adapter.list(dir));
  } catch (error) {
    if (isFerryError(error, "NOT_FOUND")) return [];
    throw error;
  }
}

/** Byte-exact comparison that reports sizes and digests instead of dumping megabytes. */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const digest = (data: Uint8Array) => createHash("sha256").update(data).digest("hex").slice(0, 16);
  assert.equal(actual.length, expected.length, `${what}: length`);
  assert.equal(digest(actual), digest(expected), `${what}: content`);
}

/** `path` holds `data`: read back where the adapter can read, else at least the size from `stat`. */
export async function expectContent(adapter: StorageAdapter, path: string, data: Uint8Array): Promise<void> {
  assert.equal((await adapter.stat(path)).size, data.length, `${path}: size from stat`);
  if (adapter.capabilities.read) assertSameBytes(await readAll(adapter, path), data, path);
}

/** `action` rejects with a FerryError, of `code` when given. */
export async function expectFerryError(action: Promise<unknown>, code: ErrorCode | undefined, what: string) {
  await assert.rejects(action, (error: unknown) => {
    assert.ok(isFerryError(error), `${what}: expected a FerryError, got ${String(error)}`);
    if (code !== undefined) assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

/**
 * `action` rejects with a FerryError of `code` (or one of `code`), its message matching `pattern`;
 * the error is returned for further checks.
 */
export async function rejectsWith(
  action: Promise<unknown>,
  code: ErrorCode | readonly ErrorCode[],
  pattern?: RegExp,
): Promise<FerryError> {
  const codes: readonly ErrorCode[] = typeof code === "string" ? [code] : code;
  let caught: unknown;
  try {
    await action;
  } catch (error) {
    caught = error;
  }
  assert.ok(isFerryError(caught), `expected a FerryError ${codes.join("/")}, got ${String(caught)}`);
  assert.ok(codes.includes(caught.code), `${caught.code}: ${caught.message}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/**
 * A stream that gives `first` and then stalls forever (until destroyed). `consumed` resolves once
 * the writer has taken `first` and asks for more, or after `fallbackMs` should it buffer otherwise.
 */
export function stallingSource(
  first: Buffer,
  fallbackMs = 2000,
): { source: Readable; consumed: Promise<void> } {
  let asked = 0;
  let resolve: () => void = () => undefined;
  const taken = new Promise<void>((done) => (resolve = done));
  const source = new Readable({
    highWaterMark: 1,
    read(this: Readable) {
      if (++asked === 1) this.push(first);
      else resolve();
    },
  });
  const fallback = delay(fallbackMs, undefined, { ref: false });
  return { source, consumed: Promise.race([taken, fallback]) };
}

/** A name of exactly `bytes` UTF-8 bytes ending in `suffix`. */
export function nameOfBytes(bytes: number, suffix: string): string {
  return "n".repeat(Math.max(1, bytes - Buffer.byteLength(suffix))) + suffix;
}
