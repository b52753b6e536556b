/**
 * One file from a source adapter to a target adapter: streamed, counted, written so that no partial
 * file ever shows under the final name, and checked against the expected size.
 */
import { randomBytes } from "node:crypto";
import { Transform } from "node:stream";
import { FerryError } from "../core/errors.ts";
import { basename, dirname, joinPath } from "../core/paths.ts";
import type { Entry, StorageAdapter } from "../storage/adapter.ts";

export interface SendOptions {
  signal?: AbortSignal;
  /** Called with the bytes sent so far, at most every few KiB. */
  onProgress?: (bytes: number) => void;
}

export interface SendRequest {
  path: string;
  targetPath: string;
  size: number;
  modTime?: number;
}

export async function sendFile(
  source: StorageAdapter,
  target: StorageAdapter,
  request: SendRequest,
  options: SendOptions = {},
): Promise<Entry> {
  const { signal, onProgress } = options;
  const input = await source.read(request.path, signal ? { signal } : {});
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      onProgress?.(bytes);
      done(null, chunk);
    },
  });
  input.on("error", (error) => counter.destroy(error));
  const body = input.pipe(counter);
  const writeOptions = {
    size: request.size,
    ...(request.modTime === undefined ? {} : { modTime: request.modTime }),
    ...(signal ? { signal } : {}),
  };

  let stored: Entry;
  const caps = target.capabilities;
  if (caps.partialWritesVisible && caps.serverSideMove && target.move) {
    // The target would show a half-written file: write beside it, then move it into place.
    const temp = joinPath(
      dirname(request.targetPath),
      `.ferry-${randomBytes(6).toString("hex")}.${basename(request.targetPath)}.part`,
    );
    try {
      await target.write(temp, body, writeOptions);
      await target.move(temp, request.targetPath, signal ? { signal } : {});
    } catch (error) {
      await target.remove(temp).catch(() => undefined);
      throw error;
    }
    stored = await target.stat(request.targetPath, signal ? { signal } : {});
  } else {
    stored = await target.write(request.targetPath, body, writeOptions);
  }
  if (stored.size !== undefined && stored.size !== request.size) {
    throw new FerryError(
      "PROTOCOL",
      `${target.name}: ${request.targetPath} stored ${stored.size} bytes, expected ${request.size}`,
      { subject: request.targetPath, retryable: true },
    );
  }
  return stored;
}
