/**
 * A folder on this machine's filesystem. Writes go to a hidden temp file beside the target, are
 * counted, fsynced and renamed over the final name, so a crash at any moment leaves the old file
 * or the new one, never a partial one. Names that differ only in Unicode normalization (a file
 * written NFD from macOS, asked for in NFC) are found by matching the folder's entries in NFC.
 */
import type { Stats } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable, addAbortSignal } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { raceAbort, throwIfAborted, toFerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { dirname, joinPath, normalizePath, pathKey } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type Capabilities,
  type Entry,
  type HashKind,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Usage,
  type WriteOptions,
} from "../adapter.ts";
import { sha256Of } from "../digest.ts";
import { sizeMismatch } from "../errors.ts";
import { fsError, isMissing, localError } from "./errors.ts";
import { TEMP_NAME, tempName } from "../temp-names.ts";

/** Files from this size on are read in big chunks. */
const BIG_FILE = 8 * 1024 * 1024;
/** Entries of a folder stat'ed at once while listing. */
const LIST_BATCH = 64;
/** A temp file untouched this long belongs to a write that died; it may go with its folder. */
const STALE_TEMP_MS = 15 * 60_000;

const capabilities: Capabilities = {
  read: true,
  write: true,
  list: "flat",
  listSizes: true,
  modTimePrecisionMs: 1,
  setModTime: true,
  hashes: ["sha256"],
  rangeRead: true,
  resumableWrite: "none",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  maxConcurrency: 8,
  forbiddenChars: "\0",
  maxNameBytes: 255,
  caseInsensitive: false,
  watch: false,
  usage: true,
  removable: false,
};

function toEntry(path: string, stats: Stats): Entry | undefined {
  const modTime = Math.round(stats.mtimeMs);
  if (stats.isDirectory()) return { path, type: "dir", modTime };
  if (stats.isFile()) return { path, type: "file", size: stats.size, modTime };
  return undefined; // sockets, devices, pipes: not files Ferry can move
}

/** A Buffer view of the chunk, without copying: it is written before the next one is pulled. */
function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

async function writeAll(handle: FileHandle, buffer: Buffer): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, done, buffer.length - done);
    done += bytesWritten;
  }
}

class LocalStorage implements StorageAdapter {
  readonly kind = "local";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities> = localAdapter.capabilities;
  /** Absolute path of the folder this adapter serves. */
  readonly root: string;
  readonly #logger: Logger;

  constructor(root: string, name: string, logger: Logger) {
    this.root = root;
    this.name = name;
    this.#logger = logger;
  }

  #abs(path: string): string {
    return path === "" ? this.root : join(this.root, ...path.split("/"));
  }

  /** Normalizes a contract path and refuses names this target cannot store. */
  #check(input: string): string {
    const path = normalizePath(input);
    for (const name of path === "" ? [] : path.split("/")) {
      if (name.includes("\0")) throw localError("NAME_INVALID", this.name, path, "names may not contain NUL");
      if (Buffer.byteLength(name) > 255) {
        throw localError("NAME_INVALID", this.name, path, "a name may have at most 255 bytes");
      }
      if (TEMP_NAME.test(name)) {
        throw localError(
          "NAME_INVALID",
          this.name,
          path,
          "names like this are reserved for Ferry's temp files",
        );
      }
    }
    return path;
  }

  async #exists(path: string): Promise<boolean> {
    try {
      await fs.lstat(this.#abs(path));
      return true;
    } catch (error) {
      // Anything but "missing" is left for the real operation to report.
      return !isMissing(error);
    }
  }

  /**
   * The path as stored on disk: each component that does not exist as given is matched against
   * its folder's entries in NFC. Components past the first missing one are kept as given.
   */
  async #locate(path: string): Promise<string> {
    if (path === "" || (await this.#exists(path))) return path;
    const parts = path.split("/");
    let found = "";
    for (const [i, part] of parts.entries()) {
      const direct = joinPath(found, part);
      if (await this.#exists(direct)) {
        found = direct;
        continue;
      }
      // ASCII names have a single normalization form, so only others need the folder scan.
      // eslint-disable-next-line no-control-regex
      const match = /^[\x00-\x7f]*$/.test(part) ? undefined : await this.#matchNfc(found, part);
      if (match === undefined) return joinPath(found, ...parts.slice(i));
      found = joinPath(found, match);
    }
    return found;
  }

  async #matchNfc(dir: string, name: string): Promise<string | undefined> {
    const key = pathKey(name);
    try {
      return (await fs.readdir(this.#abs(dir))).find((entry) => pathKey(entry) === key);
    } catch {
      return undefined;
    }
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    if (options.recursive === true) {
      throw localError("UNSUPPORTED", this.name, dir, "lists one folder at a time");
    }
    const path = await this.#locate(this.#check(dir));
    let dirents;
    try {
      dirents = await fs.readdir(this.#abs(path), { withFileTypes: true });
    } catch (error) {
      throw fsError(error, this.name, path);
    }
    // Stat a batch of entries at once: one at a time, a 100,000-file tree takes seconds longer.
    const names = dirents.map((d) => d.name).filter((name) => !TEMP_NAME.test(name));
    for (let i = 0; i < names.length; i += LIST_BATCH) {
      throwIfAborted(signal);
      const batch = names.slice(i, i + LIST_BATCH).map((name) => joinPath(path, name));
      const stats = await Promise.all(
        batch.map((child) =>
          fs.stat(this.#abs(child)).catch((error: unknown) => {
            // Removed meanwhile, or a dangling symlink: not a file to offer.
            this.#logger.debug({ path: child, err: error }, "skipping an entry that cannot be read");
            return undefined;
          }),
        ),
      );
      for (const [k, child] of batch.entries()) {
        const entryStats = stats[k];
        const entry = entryStats && toEntry(child, entryStats);
        if (entry) yield entry;
      }
    }
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    throwIfAborted(options.signal);
    const at = await this.#locate(this.#check(path));
    let stats;
    try {
      stats = await fs.stat(this.#abs(at));
    } catch (error) {
      throw fsError(error, this.name, at);
    }
    const entry = toEntry(at, stats);
    if (!entry) throw localError("NOT_FOUND", this.name, at, "neither a file nor a folder");
    return entry;
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, offset = 0 } = options;
    throwIfAborted(signal);
    const at = await this.#locate(this.#check(path));
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw localError("PROTOCOL", this.name, at, `offset ${offset} is not a byte position`);
    }
    let handle: FileHandle | undefined;
    let size: number;
    try {
      handle = await fs.open(this.#abs(at), "r");
      const stats = await handle.stat();
      if (!stats.isFile()) throw localError("NOT_FOUND", this.name, at, "not a file");
      size = stats.size;
    } catch (error) {
      await handle?.close();
      throw fsError(error, this.name, at);
    }
    // Small chunks keep many transfers at once small in memory; a big file is one fast stream,
    // where small reads cost throughput (docs/adr/0006-memory.md).
    const chunk = size >= BIG_FILE ? 1024 * 1024 : 16 * 1024;
    const stream = handle.createReadStream({ start: offset, highWaterMark: chunk });
    return signal ? addAbortSignal(signal, stream) : stream;
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const { signal, size, modTime } = options;
    throwIfAborted(signal);
    const checked = this.#check(path);
    if (checked === "") throw localError("NAME_INVALID", this.name, path, "cannot write to the root folder");
    if (!Number.isSafeInteger(size) || size < 0) {
      throw localError("PROTOCOL", this.name, checked, `size ${size} is not a byte count`);
    }
    const target = await this.#locate(checked);
    const folder = dirname(target);
    const temp = join(this.#abs(folder), tempName());
    let handle: FileHandle | undefined;
    try {
      await fs.mkdir(this.#abs(folder), { recursive: true });
      handle = await fs.open(temp, "wx");
      const old = await fs.stat(this.#abs(target)).catch(() => undefined);
      // Keep a replaced file's permissions where the filesystem lets us.
      if (old?.isFile()) await handle.chmod(old.mode & 0o7777).catch(() => undefined);
      const file = handle;
      let received = 0;
      const copy = pipeline(
        source,
        async (chunks: AsyncIterable<Uint8Array | string>) => {
          for await (const chunk of chunks) {
            const buffer = typeof chunk === "string" ? Buffer.from(chunk) : toBuffer(chunk);
            received += buffer.length;
            if (received > size) throw sizeMismatch(this.name, target, size, "more");
            try {
              await writeAll(file, buffer);
            } catch (error) {
              throw fsError(error, this.name, target);
            }
          }
        },
        signal ? { signal } : {},
      );
      // Errors of the source stream are not about this folder: keep them apart from fsError's.
      await raceAbort(copy, signal).catch((error: unknown) => {
        throw toFerryError(error);
      });
      if (received !== size) throw sizeMismatch(this.name, target, size, `only ${received}`);
      throwIfAborted(signal);
      if (modTime !== undefined) await handle.utimes(new Date(), new Date(modTime));
      await handle.sync();
      const stats = await handle.stat();
      await handle.close();
      handle = undefined;
      await fs.rename(temp, this.#abs(target));
      await this.#syncFolder(folder);
      return { path: target, type: "file", size: stats.size, modTime: Math.round(stats.mtimeMs) };
    } catch (error) {
      if (source instanceof Readable) source.destroy();
      await handle?.close().catch(() => undefined);
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw fsError(error, this.name, target);
    }
  }

  /** Makes a rename in `folder` durable; filesystems that cannot fsync a folder are let be. */
  async #syncFolder(folder: string): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      handle = await fs.open(this.#abs(folder), "r");
      await handle.sync();
    } catch (error) {
      this.#logger.debug({ path: folder, err: error }, "cannot fsync folder");
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  async remove(path: string, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const checked = this.#check(path);
    if (checked === "") throw localError("NAME_INVALID", this.name, path, "will not remove the root folder");
    const at = await this.#locate(checked);
    try {
      const stats = await fs.lstat(this.#abs(at));
      if (stats.isDirectory()) await this.#removeFolder(at);
      else await fs.unlink(this.#abs(at));
    } catch (error) {
      if (!isMissing(error)) throw fsError(error, this.name, at);
    }
  }

  async #removeFolder(path: string): Promise<void> {
    const abs = this.#abs(path);
    try {
      await fs.rmdir(abs);
      return;
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "ENOTEMPTY")) throw error;
    }
    // Temp files of writes that died must not keep an otherwise empty folder alive.
    const names = await fs.readdir(abs);
    for (const name of names) {
      const stats = TEMP_NAME.test(name) ? await fs.lstat(join(abs, name)).catch(() => undefined) : undefined;
      if (!TEMP_NAME.test(name) || (stats && Date.now() - stats.mtimeMs < STALE_TEMP_MS)) {
        throw localError("NOT_EMPTY", this.name, path, "folder is not empty");
      }
    }
    for (const name of names) await fs.rm(join(abs, name), { force: true });
    await fs.rmdir(abs);
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const at = await this.#locate(this.#check(path));
    try {
      await fs.mkdir(this.#abs(at), { recursive: true });
    } catch (error) {
      throw fsError(error, this.name, at);
    }
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const source = await this.#locate(this.#check(from));
    const target = await this.#locate(this.#check(to));
    if (source === "" || target === "")
      throw localError("NAME_INVALID", this.name, from, "cannot move the root folder");
    try {
      await fs.mkdir(this.#abs(dirname(target)), { recursive: true });
      await fs.rename(this.#abs(source), this.#abs(target));
    } catch (error) {
      throw fsError(error, this.name, isMissing(error) ? source : target);
    }
    await this.#syncFolder(dirname(target));
    if (dirname(source) !== dirname(target)) await this.#syncFolder(dirname(source));
  }

  async setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const at = await this.#locate(this.#check(path));
    try {
      await fs.utimes(this.#abs(at), new Date(), new Date(modTime));
    } catch (error) {
      throw fsError(error, this.name, at);
    }
  }

  async hash(path: string, kind: HashKind, options: OpOptions = {}): Promise<string> {
    if (kind !== "sha256") throw localError("UNSUPPORTED", this.name, path, `no ${kind} hashes here`);
    const stream = await this.read(path, options);
    try {
      return await sha256Of(stream, options.signal);
    } catch (error) {
      throw fsError(error, this.name, path);
    }
  }

  async usage(options: OpOptions = {}): Promise<Usage> {
    throwIfAborted(options.signal);
    try {
      const fsStats = await fs.statfs(this.root);
      return {
        totalBytes: fsStats.blocks * fsStats.bsize,
        freeBytes: fsStats.bavail * fsStats.bsize,
        usedBytes: (fsStats.blocks - fsStats.bfree) * fsStats.bsize,
      };
    } catch (error) {
      throw fsError(error, this.name, "");
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface LocalOptions {
  /** The folder, absolute or relative to the config file's folder. */
  path: string;
}

export const localAdapter = defineStorageAdapter<LocalOptions>({
  kind: "local",
  optionsSchema: z.object({ path: z.string().min(1) }),
  capabilities,
  create: (options, context) =>
    new LocalStorage(resolve(context.baseDir, options.path), context.name, context.logger),
});
