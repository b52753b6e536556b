/**
 * The library's bytes, content-addressed: `<root>/<sha256[0..2]>/<sha256>`, one file per content
 * whatever its names. A write streams into `<root>/tmp/<16 hex>.part`, hashing as it goes, is
 * synced, then renamed to its final name and the folder synced: a crash (kill -9, power cut) at
 * any point leaves at most a temp file, never a partial file under a final name. Temps a crash
 * left are swept when the library opens.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import type { ByteSource } from "./metadata/types.ts";

const TEMP = /^[0-9a-f]{16}\.part$/;
const SHA256 = /^[0-9a-f]{64}$/;

export class ContentStore {
  readonly root: string;
  readonly #temps: string;

  constructor(root: string) {
    this.root = root;
    this.#temps = join(root, "tmp");
  }

  path(sha256: string): string {
    if (!SHA256.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /**
   * Streams `input` into a temp file and gives its sha256. Past `maxBytes` it stops reading and
   * throws NO_SPACE (nothing is kept); an abort throws ABORTED (nothing is kept). The temp it
   * answers is complete and synced: the caller moves it into place (`place`) or drops it (`drop`).
   */
  async write(
    input: Readable | AsyncIterable<Uint8Array>,
    options: { maxBytes: number; signal?: AbortSignal | undefined; subject: string },
  ): Promise<{ sha256: string; size: number; temp: string }> {
    await mkdir(this.#temps, { recursive: true });
    const temp = join(this.#temps, `${randomBytes(8).toString("hex")}.part`);
    const hash = createHash("sha256");
    let size = 0;
    let handle: FileHandle | undefined = await open(temp, "wx");
    try {
      for await (const chunk of input as AsyncIterable<Uint8Array>) {
        throwIfAborted(options.signal);
        size += chunk.length;
        if (size > options.maxBytes) {
          throw new FerryError(
            "NO_SPACE",
            `${options.subject} is larger than the library's limit of ${options.maxBytes} bytes`,
            { subject: options.subject, retryable: false },
          );
        }
        hash.update(chunk);
        await handle.write(chunk);
      }
      throwIfAborted(options.signal);
      await handle.sync();
      await handle.close();
      handle = undefined;
      return { sha256: hash.digest("hex"), size, temp };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    }
  }

  /** Moves a complete temp to the content's final name, or drops it when the content is there. */
  async place(temp: string, sha256: string): Promise<boolean> {
    const final = this.path(sha256);
    if (await exists(final)) {
      await rm(temp, { force: true });
      return true;
    }
    await mkdir(dirname(final), { recursive: true });
    await rename(temp, final);
    await syncFolder(dirname(final));
    return false;
  }

  async drop(temp: string): Promise<void> {
    await rm(temp, { force: true });
  }

  /** Removes a content file; idempotent. */
  async remove(sha256: string): Promise<void> {
    await rm(this.path(sha256), { force: true });
  }

  async has(sha256: string): Promise<boolean> {
    return exists(this.path(sha256));
  }

  read(sha256: string, options: { signal?: AbortSignal } = {}): Readable {
    return createReadStream(this.path(sha256), options.signal ? { signal: options.signal } : {});
  }

  /** Random access to a content file, for the metadata parsers; close() when done. */
  async source(sha256: string): Promise<ByteSource & { close(): Promise<void> }> {
    const handle = await open(this.path(sha256), "r");
    const { size } = await handle.stat();
    return {
      size,
      read: async (offset, length) => {
        const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        let done = 0;
        while (done < buffer.length) {
          const { bytesRead } = await handle.read(buffer, done, buffer.length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return buffer.subarray(0, done);
      },
      close: () => handle.close(),
    };
  }

  /**
   * Removes temps that nobody has written to for `staleMs`: what a crashed or killed upload left.
   * A temp written to more recently may belong to an upload running in another process on the
   * same data folder, and is kept. Returns how many were removed.
   */
  async sweepTemps(now: number, staleMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#temps);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      if (!TEMP.test(name)) continue;
      const path = join(this.#temps, name);
      const info = await stat(path).catch(() => undefined);
      if (info && now - info.mtimeMs >= staleMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** A rename is durable once its folder is synced. */
async function syncFolder(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
