/**
 * One file from a source adapter to a target adapter: streamed, counted, written so that no partial
 * file ever shows under the final name, and checked against the expected size. The one transfer
 * path: sync work and the farm's uploads to printers both send through it.
 */
import { randomBytes } from "node:crypto";
import { Transform, type Readable } from "node:stream";
import { FerryError } from "../core/errors.ts";
import { basename, dirname, joinPath } from "../core/paths.ts";
import { spentBytes } from "../core/spent-buffers.ts";
import type { Entry, StorageAdapter, UploadToken } from "./adapter.ts";

export interface SendOptions {
  signal?: AbortSignal;
  /**
   * Called with the bytes the target has taken so far: what it acknowledged, where it says (a
   * resumable upload reports what it stored); elsewhere what was handed to it, held one byte short
   * of the whole until the target confirms the file (a slow printer may still be receiving what
   * sits in the network's buffers).
   */
  onProgress?: (bytes: number) => void;
  /** The token an earlier attempt of this transfer kept (targets with resumable uploads). */
  resume?: UploadToken;
  /**
   * Called with what to keep so that a later attempt resumes: first before any byte goes (`now`:
   * awaited, so it is stored before the target holds anything to lose), then as bytes are stored.
   */
  keep?: (stored: { bytes: number; token: UploadToken }, now: boolean) => Promise<void> | void;
  /**
   * The source file already opened from its first byte (`readWithEntry`): sent instead of reading
   * it again, unless a resumed upload wants only the rest of it from a source with range reads.
   */
  opened?: Readable;
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
  const { signal } = options;
  const writeOptions = {
    size: request.size,
    ...(request.modTime === undefined ? {} : { modTime: request.modTime }),
    ...(signal ? { signal } : {}),
  };
  if (target.openUpload) {
    const upload = await target.openUpload(request.targetPath, {
      ...writeOptions,
      ...(options.resume ? { resume: options.resume } : {}),
    });
    const { keep, onProgress } = options;
    try {
      await keep?.({ bytes: upload.offset, token: upload.token }, true);
      onProgress?.(upload.offset);
      const body = await readCounted(source, request.path, upload.offset, {
        ...options,
        onProgress: () => undefined,
      });
      const stored = await upload.finish(body, {
        ...(signal ? { signal } : {}),
        onStored: (state) => {
          onProgress?.(Math.min(state.bytes, request.size));
          void keep?.(state, false);
        },
      });
      onProgress?.(request.size);
      return checkSize(target, request, stored);
    } catch (error) {
      // Nobody keeps the token, so nobody could resume: leave nothing behind.
      if (!keep) await upload.abort().catch(() => undefined);
      throw error;
    }
  }

  const { onProgress } = options;
  const short = Math.max(0, request.size - 1);
  const body = await readCounted(source, request.path, 0, {
    ...options,
    onProgress: (bytes) => onProgress?.(Math.min(bytes, short)),
  });
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
  onProgress?.(request.size);
  return checkSize(target, request, stored);
}

/**
 * The source from byte `offset` on, counting bytes for `onProgress` from 0 of the whole file. A
 * source without range reads is read from the start and the first `offset` bytes are dropped.
 */
async function readCounted(
  source: StorageAdapter,
  path: string,
  offset: number,
  { signal, onProgress, opened }: SendOptions,
): Promise<Readable> {
  const ranged = offset > 0 && source.capabilities.rangeRead;
  if (ranged) opened?.destroy();
  const input =
    opened !== undefined && !ranged
      ? opened
      : await source.read(path, { ...(signal ? { signal } : {}), ...(ranged ? { offset } : {}) });
  let skip = ranged ? 0 : offset;
  let bytes = offset;
  onProgress?.(bytes);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (skip > 0) {
        const dropped = Math.min(skip, chunk.length);
        skip -= dropped;
        chunk = chunk.subarray(dropped);
        if (chunk.length === 0) return done();
      }
      bytes += chunk.length;
      spentBytes(chunk.length);
      onProgress?.(bytes);
      done(null, chunk);
    },
  });
  input.on("error", (error) => counter.destroy(error));
  // The reader sees an error through its own listeners; a reader that has already given up (an
  // upload aborted at stop) must not leave it unhandled, which would end the process.
  counter.on("error", () => undefined);
  return input.pipe(counter);
}

function checkSize(target: StorageAdapter, request: SendRequest, stored: Entry): Entry {
  if (stored.size !== undefined && stored.size !== request.size) {
    throw new FerryError(
      "PROTOCOL",
      `${target.name}: ${request.targetPath} stored ${stored.size} bytes, expected ${request.size}`,
      { subject: request.targetPath, retryable: true },
    );
  }
  return stored;
}
