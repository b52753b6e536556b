/**
 * Fault injection for tests: an adapter whose reads fail with a chosen error after a
 * number of bytes (a cable pulled mid-transfer), and that counts the bytes it gave out, so a test
 * can prove what a resume read again.
 */
import { Transform, type Readable } from "node:stream";
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import type { StorageAdapter } from "../adapter.ts";

export interface Faults {
  /** Reads fail once this many bytes were given out in all (undefined: never). */
  failReadsAfter?: number;
  code?: ErrorCode;
}

export interface FaultyAdapter {
  adapter: StorageAdapter;
  /** Bytes every read has given out so far. */
  readonly bytesRead: number;
  set(faults: Faults): void;
}

export function withFaults(inner: StorageAdapter, initial: Faults = {}): FaultyAdapter {
  let faults = initial;
  let bytesRead = 0;
  const read = async (path: string, options?: Parameters<StorageAdapter["read"]>[1]): Promise<Readable> => {
    const input = await inner.read(path, options);
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        const limit = faults.failReadsAfter;
        if (limit !== undefined && bytesRead + chunk.length > limit) {
          const room = Math.max(0, limit - bytesRead);
          bytesRead += room;
          if (room > 0) this.push(chunk.subarray(0, room));
          done(
            new FerryError(
              faults.code ?? "UNAVAILABLE",
              `${inner.name}: ${path}: the device went away (injected)`,
              {
                subject: path,
              },
            ),
          );
          return;
        }
        bytesRead += chunk.length;
        done(null, chunk);
      },
    });
    input.on("error", (error) => counter.destroy(error));
    return input.pipe(counter);
  };
  // Every other method is the inner adapter's own, bound (its private state needs it as `this`).
  const adapter: StorageAdapter = {
    kind: inner.kind,
    name: inner.name,
    capabilities: inner.capabilities,
    list: (dir, options) => inner.list(dir, options),
    stat: (path, options) => inner.stat(path, options),
    read,
    write: (path, source, options) => inner.write(path, source, options),
    remove: (path, options) => inner.remove(path, options),
    mkdir: (path, options) => inner.mkdir(path, options),
    close: () => inner.close(),
  };
  if (inner.move) adapter.move = inner.move.bind(inner);
  if (inner.setModTime) adapter.setModTime = inner.setModTime.bind(inner);
  if (inner.hash) adapter.hash = inner.hash.bind(inner);
  if (inner.usage) adapter.usage = inner.usage.bind(inner);
  if (inner.openUpload) adapter.openUpload = inner.openUpload.bind(inner);
  return {
    adapter,
    get bytesRead() {
      return bytesRead;
    },
    set(next) {
      faults = next;
    },
  };
}
