/**
 * A folder on this machine's filesystem. Writes go to a hidden temp file beside the target, are
 * counted, fsynced and renamed over the final name, so a crash at any moment leaves the old file
 * or the new one, never a partial one. Names that differ only in Unicode normalization (a file
 * written NFD from macOS, asked for in NFC) are found by matching the folder's entries in NFC.
 * Symbolic links are read only with `follow_links: true` and changes never go through one
 * (docs/adr/0015-links.md): nothing outside the folder is written or deleted by way of a link.
 */
import { constants, type Stats } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable, addAbortSignal } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { raceAbort, throwIfAborted, toFerryError, type FerryError } from "../../core/errors.ts";
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
import { errnoCode, fsError, isMissing, localError } from "./errors.ts";
import { TEMP_NAME, tempName } from "../temp-names.ts";

/** Files from this size on are read in big chunks. */
const BIG_FILE = 8 * 1024 * 1024;
/** Files up to this size (from the read's offset) are read whole, in one call. */
const WHOLE_READ = 64 * 1024;

/** `length` bytes from `offset` (fewer if the file ends first). */
async function readWhole(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}
/** Entries of a folder stat'ed at once while listing. */
const LIST_BATCH = 64;
/** A temp file untouched this long belongs to a write that died; it may go with its folder. */
const STALE_TEMP_MS = 15 * 60_000;
/**
 * Temp files this process is writing, by absolute path. Any other temp file last changed before
 * this process started was left by a write an earlier run never finished (a kill, a power cut):
 * listings sweep those away. The set, not the clock, protects our own writes (a network
 * filesystem's clock may lag this machine's).
 */
const WRITING = new Set<string>();
const STARTED_AT = performance.timeOrigin;

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

/** Which folder `stats` is, whatever path led to it. */
function folderKey(stats: Stats): string {
  return `${stats.dev}:${stats.ino}`;
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
  /** Whether reads (listings, stat, read) go through symbolic links; changes never do. */
  readonly #followLinks: boolean;

  constructor(root: string, name: string, logger: Logger, followLinks: boolean) {
    this.root = root;
    this.name = name;
    this.#logger = logger;
    this.#followLinks = followLinks;
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

  /**
   * The first component of `path` (from the root down, the last one included) that is a symbolic
   * link, or undefined. Stops at the first component that does not exist: nothing is below it.
   */
  async #firstLink(path: string): Promise<string | undefined> {
    let at = "";
    for (const part of path === "" ? [] : path.split("/")) {
      at = joinPath(at, part);
      const stats = await fs.lstat(this.#abs(at)).catch(() => undefined);
      if (stats === undefined) return undefined;
      if (stats.isSymbolicLink()) return at;
    }
    return undefined;
  }

  /**
   * The on-disk path of a checked path and the first symbolic link on it (from the root down), with
   * the last component's lstat when the path exists as given. The walk that looks for links also
   * finds a path that exists as given: only a missing component needs #locate (one lstat a file less).
   */
  async #resolve(path: string): Promise<{ path: string; link?: string; stats?: Stats }> {
    let at = "";
    let stats: Stats | undefined;
    for (const part of path === "" ? [] : path.split("/")) {
      at = joinPath(at, part);
      stats = await fs.lstat(this.#abs(at)).catch(() => undefined);
      if (stats === undefined) break;
      if (stats.isSymbolicLink()) return { path, link: at };
    }
    if (path === "" || stats !== undefined) return stats === undefined ? { path } : { path, stats };
    const located = await this.#locate(path);
    const link = await this.#firstLink(located);
    return link === undefined ? { path: located } : { path: located, link };
  }

  /**
   * The on-disk path to read at `input`; through a link only with `follow_links: true`. Without
   * links, with the path's lstat when the walk took it.
   */
  async #readAt(input: string): Promise<{ path: string; stats?: Stats }> {
    const checked = this.#check(input);
    if (this.#followLinks) return { path: await this.#locate(checked) };
    const { link, ...found } = await this.#resolve(checked);
    if (link !== undefined) throw this.#linkNotFollowed(link);
    return found;
  }

  #linkNotFollowed(link: string): FerryError {
    return localError("NOT_FOUND", this.name, link, "a symbolic link, not followed (follow_links is false)");
  }

  /**
   * `input` opened for reading, and its on-disk path. Not following links, only the folders on the
   * way are walked: the file itself is opened O_NOFOLLOW, which refuses a link there (ELOOP), so a
   * file that exists as given costs no lstat of its own. Anything else (a name stored in NFD, a
   * link on the way) goes through #readAt, which finds it or says why not.
   */
  async #openToRead(input: string): Promise<{ path: string; handle: FileHandle }> {
    const flags = constants.O_RDONLY | (this.#followLinks ? 0 : constants.O_NOFOLLOW);
    if (!this.#followLinks) {
      const path = this.#check(input);
      const folder = dirname(path);
      const walked = await this.#resolve(folder);
      if (walked.link === undefined && walked.path === folder) {
        try {
          return { path, handle: await fs.open(this.#abs(path), flags) };
        } catch (error) {
          if (errnoCode(error) === "ELOOP") throw this.#linkNotFollowed(path);
          if (!isMissing(error)) throw fsError(error, this.name, path);
        }
      }
    }
    const { path } = await this.#readAt(input);
    try {
      return { path, handle: await fs.open(this.#abs(path), flags) };
    } catch (error) {
      throw fsError(error, this.name, path);
    }
  }

  /**
   * The on-disk path for a change (write, remove, mkdir, move, set a time) at `input`: the one place
   * that clears a path for changes. A change never goes through a symbolic link, whatever
   * `follow_links` says: a link on the way, or at `input` itself, is refused. `linkItself` lets
   * `remove` take a link away (the link, never what it points to).
   */
  async #changeAt(input: string, linkItself = false): Promise<string> {
    const { path, link } = await this.#resolve(this.#check(input));
    if (link !== undefined && !(linkItself && link === path)) throw this.#linkRefused(link);
    return path;
  }

  #linkRefused(link: string): FerryError {
    return localError(
      "PERMISSION",
      this.name,
      link,
      "a symbolic link; Ferry never writes or deletes through a link",
    );
  }

  /** Creates `folder` and its parents (cleared by #changeAt), then checks that it is really inside. */
  async #makeFolder(folder: string): Promise<void> {
    await fs.mkdir(this.#abs(folder), { recursive: true });
    await this.#assertInside(folder);
  }

  /**
   * Refuses to change anything in `folder` unless it really is that folder of the root: a link
   * swapped in after #changeAt looked would otherwise lead the change outside. Missing: the
   * caller's errno handling says so.
   */
  async #assertInside(folder: string): Promise<void> {
    const [real, realRoot] = await Promise.all([fs.realpath(this.#abs(folder)), fs.realpath(this.root)]);
    const expected = folder === "" ? realRoot : join(realRoot, ...folder.split("/"));
    if (real !== expected) {
      const link = (await this.#firstLink(folder)) ?? folder;
      throw this.#linkRefused(link);
    }
  }

  /**
   * With `follow_links: true`: the folders from the root down to `dir` (the ones a link back up
   * the tree would enter again), by device and inode, each with its path.
   */
  async #foldersUpTo(dir: string): Promise<Map<string, string>> {
    const folders = new Map<string, string>();
    let at = "";
    for (const part of ["", ...(dir === "" ? [] : dir.split("/"))]) {
      at = joinPath(at, part);
      const stats = await fs.stat(this.#abs(at));
      folders.set(folderKey(stats), at);
    }
    return folders;
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    if (options.recursive === true) {
      throw localError("UNSUPPORTED", this.name, dir, "lists one folder at a time");
    }
    const { path } = await this.#readAt(dir);
    let dirents;
    let above: Map<string, string> | undefined;
    try {
      dirents = await fs.readdir(this.#abs(path), { withFileTypes: true });
      if (this.#followLinks) above = await this.#foldersUpTo(path);
    } catch (error) {
      throw fsError(error, this.name, path);
    }
    // Not following links, a link is neither a file nor a folder: lstat says so.
    const statOf = this.#followLinks ? fs.stat : fs.lstat;
    // Stat a batch of entries at once: one at a time, a 100,000-file tree takes seconds longer.
    const names = dirents.map((d) => d.name).filter((name) => !TEMP_NAME.test(name));
    const temps = dirents.filter((d) => d.isFile() && TEMP_NAME.test(d.name));
    if (temps.length > 0)
      await this.#sweep(
        path,
        temps.map((d) => d.name),
      );
    // A listed name is one clean component: the child's paths are joined, not normalized again.
    const abs = this.#abs(path);
    const prefix = path === "" ? "" : `${path}/`;
    const statBatch = (from: number) =>
      Promise.all(
        names.slice(from, from + LIST_BATCH).map((name) =>
          statOf(join(abs, name)).catch((error: unknown) => {
            // Removed meanwhile, or a dangling symlink: not a file to offer.
            this.#logger.debug({ path: prefix + name, err: error }, "skipping an entry that cannot be read");
            return undefined;
          }),
        ),
      );
    // The next batch is read while this one is handed on (never rejects: each stat handles its error).
    let next = names.length > 0 ? statBatch(0) : undefined;
    for (let i = 0; next !== undefined; i += LIST_BATCH) {
      throwIfAborted(signal);
      const stats = await next;
      next = i + LIST_BATCH < names.length ? statBatch(i + LIST_BATCH) : undefined;
      const batch = names.slice(i, i + LIST_BATCH);
      for (const [k, name] of batch.entries()) {
        const child = prefix + name;
        const entryStats = stats[k];
        if (entryStats?.isSymbolicLink()) {
          this.#logger.debug({ path: child }, "not following a symbolic link (follow_links is false)");
          continue;
        }
        const loopsTo = entryStats?.isDirectory() ? above?.get(folderKey(entryStats)) : undefined;
        if (loopsTo !== undefined) {
          this.#logger.warn(
            { device: this.name, path: child, leadsTo: loopsTo },
            `${this.name}: skipping ${child} (a symbolic link on its way leads back to ${loopsTo === "" ? "the root" : loopsTo}, a loop)`,
          );
          continue;
        }
        const entry = entryStats && toEntry(child, entryStats);
        if (entry) yield entry;
      }
    }
  }

  /** Removes the temp files in `folder` that writes of earlier runs left (see WRITING). */
  async #sweep(folder: string, temps: string[]): Promise<void> {
    // Never through a link (a folder reached by follow_links is read, not changed).
    if ((await this.#firstLink(folder)) !== undefined) return;
    for (const name of temps) {
      const abs = join(this.#abs(folder), name);
      if (WRITING.has(abs)) continue;
      const stats = await fs.lstat(abs).catch(() => undefined);
      if (!stats?.isFile() || stats.mtimeMs >= STARTED_AT) continue;
      await fs.rm(abs, { force: true }).then(
        () =>
          this.#logger.info(
            { device: this.name, path: joinPath(folder, name) },
            "removed a temp file an earlier run left",
          ),
        (error: unknown) =>
          this.#logger.debug({ path: abs, err: error }, "cannot remove a leftover temp file"),
      );
    }
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    throwIfAborted(options.signal);
    const { path: at, stats: walked } = await this.#readAt(path);
    let stats;
    try {
      stats = walked ?? (await (this.#followLinks ? fs.stat : fs.lstat)(this.#abs(at)));
    } catch (error) {
      throw fsError(error, this.name, at);
    }
    const entry = toEntry(at, stats);
    if (!entry) throw localError("NOT_FOUND", this.name, at, "neither a file nor a folder");
    return entry;
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    return (await this.#read(path, options)).body;
  }

  readWithEntry(path: string, options: OpOptions = {}): Promise<{ entry: Entry; body: Readable }> {
    return this.#read(path, options);
  }

  /** The file from `offset` on, with its entry from the same fstat that sizes the read. */
  async #read(path: string, options: ReadOptions): Promise<{ entry: Entry; body: Readable }> {
    const { signal, offset = 0 } = options;
    throwIfAborted(signal);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw localError("PROTOCOL", this.name, normalizePath(path), `offset ${offset} is not a byte position`);
    }
    const { path: at, handle } = await this.#openToRead(path);
    let stats: Stats;
    let entry: Entry | undefined;
    try {
      stats = await handle.stat();
      entry = stats.isFile() ? toEntry(at, stats) : undefined;
      if (entry === undefined) throw localError("NOT_FOUND", this.name, at, "not a file");
    } catch (error) {
      await handle.close();
      throw fsError(error, this.name, at);
    }
    const { size } = stats;
    if (size - offset <= WHOLE_READ) {
      // A small file in one read and no stream machinery: a stream reads twice (the second finds
      // the end) and costs more CPU than the file's bytes (issue 16). The size is the one just
      // stat'd; a file that changed since shows as a size mismatch downstream, as with a stream.
      let bytes: Buffer;
      try {
        bytes = await readWhole(handle, offset, Math.max(0, size - offset));
      } catch (error) {
        throw fsError(error, this.name, at);
      } finally {
        await handle.close();
      }
      const whole = Readable.from(bytes.length > 0 ? [bytes] : [], { objectMode: false });
      return { entry, body: signal ? addAbortSignal(signal, whole) : whole };
    }
    // Small chunks keep many transfers at once small in memory; a big file is one fast stream,
    // where small reads cost throughput (docs/adr/0006-memory.md).
    const chunk = size >= BIG_FILE ? 1024 * 1024 : 16 * 1024;
    const stream = handle.createReadStream({ start: offset, highWaterMark: chunk });
    return { entry, body: signal ? addAbortSignal(signal, stream) : stream };
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    try {
      return await this.#write(path, source, options);
    } catch (error) {
      // Also when refused before reading a byte: a source left open would fail later, unheard.
      if (source instanceof Readable) source.destroy();
      throw error;
    }
  }

  async #write(
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
    const target = await this.#changeAt(checked);
    const folder = dirname(target);
    const temp = join(this.#abs(folder), tempName());
    let handle: FileHandle | undefined;
    WRITING.add(temp);
    try {
      await this.#makeFolder(folder);
      // "wx" (O_EXCL) creates the temp file and follows no link; the rename replaces the name itself.
      handle = await fs.open(temp, "wx");
      const old = await fs.lstat(this.#abs(target)).catch(() => undefined);
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
      await handle?.close().catch(() => undefined);
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw fsError(error, this.name, target);
    } finally {
      WRITING.delete(temp);
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
    const at = await this.#changeAt(checked, true);
    try {
      await this.#assertInside(dirname(at));
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
    const at = await this.#changeAt(path);
    try {
      await this.#makeFolder(at);
    } catch (error) {
      throw fsError(error, this.name, at);
    }
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const source = await this.#changeAt(from);
    const target = await this.#changeAt(to);
    if (source === "" || target === "")
      throw localError("NAME_INVALID", this.name, from, "cannot move the root folder");
    try {
      await this.#assertInside(dirname(source));
      await this.#makeFolder(dirname(target));
      await fs.rename(this.#abs(source), this.#abs(target));
    } catch (error) {
      throw fsError(error, this.name, isMissing(error) ? source : target);
    }
    await this.#syncFolder(dirname(target));
    if (dirname(source) !== dirname(target)) await this.#syncFolder(dirname(source));
  }

  async setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const at = await this.#changeAt(path);
    try {
      // lutimes: a link put in place since #changeAt looked gets the time, not what it points to.
      await fs.lutimes(this.#abs(at), new Date(), new Date(modTime));
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
  /** Read through symbolic links in the folder (default false); changes never go through one. */
  follow_links?: boolean;
}

export const localAdapter = defineStorageAdapter<LocalOptions>({
  kind: "local",
  optionsSchema: z.object({ path: z.string().min(1), follow_links: z.boolean().default(false) }),
  capabilities,
  create: (options, context) =>
    new LocalStorage(
      resolve(context.baseDir, options.path),
      context.name,
      context.logger,
      options.follow_links ?? false,
    ),
});
