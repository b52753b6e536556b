/**
 * An SFTP server (OpenSSH and others speaking SFTP v3) as a StorageAdapter, on ssh2. One SSH
 * connection carries a pool of SFTP channels (connection.ts); the server's host key is always
 * verified (host-keys.ts). Writes are resumable uploads to a temp name renamed into place
 * (upload.ts) with pipelined writes; reads are pipelined too. A name that does not exist as given
 * is looked up in NFC among its folder's entries, so a file stored in NFD (from a Mac) is found
 * by its NFC name.
 */
import { addAbortSignal, type Readable } from "node:stream";
import type { Stats } from "ssh2";
import { FerryError, raceAbort, throwIfAborted } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { dirname, joinPath } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type AdapterContext,
  type Capabilities,
  type Entry,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Upload,
  type UploadOptions,
  type Usage,
  type WriteOptions,
} from "../adapter.ts";
import type { Channel } from "./channel.ts";
import { isConnectionLoss, isMissing, sftpError, sftpFailure } from "./errors.ts";
import { MAX_NAME_BYTES, TEMP_NAME, checkPath } from "./names.ts";
import { sftpCapabilities, sftpKind, type SftpOptions } from "./options.ts";
import { SftpReadStream } from "./read-stream.ts";
import { SftpRemote } from "./remote.ts";
import { SftpUpload, closeSource, freshPlan, resumeOffset, tokenFor } from "./upload.ts";

export { sftpCapabilities, sftpOptionsSchema, type SftpOptions } from "./options.ts";

/** A Ferry temp file untouched this long belongs to an upload that died; it may go with its folder. */
const STALE_TEMP_MS = 15 * 60_000;
const OPEN_READ = 0x01;

function toEntry(path: string, attrs: Stats): Entry | undefined {
  const modTime = attrs.mtime * 1000;
  if (attrs.isDirectory()) return { path, type: "dir", modTime };
  if (attrs.isFile()) return { path, type: "file", size: attrs.size, modTime };
  return undefined; // sockets, devices, pipes: not files Ferry can move
}

class SftpStorage implements StorageAdapter {
  readonly kind = "sftp";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities> = sftpCapabilities;
  readonly #logger: Logger;
  readonly #remote: SftpRemote;

  constructor(options: SftpOptions, context: AdapterContext) {
    this.name = context.name;
    this.#logger = context.logger;
    this.#remote = new SftpRemote(options, context);
  }

  /** Normalizes a contract path and refuses names this adapter never sends. */
  #check(path: string): string {
    return checkPath(this.name, path);
  }

  /** The path as stored on the server (NFC lookup of names that do not exist as given). */
  #locate(path: string, signal?: AbortSignal): Promise<string> {
    return this.#remote.locate(path, signal);
  }

  #run<T>(path: string, signal: AbortSignal | undefined, fn: (channel: Channel) => Promise<T>): Promise<T> {
    return this.#remote.run(path, signal, fn);
  }

  #abs(path: string): string {
    return this.#remote.abs(path);
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    if (options.recursive === true)
      throw sftpFailure("UNSUPPORTED", this.name, dir, "lists one folder at a time");
    const path = await this.#locate(this.#check(dir), signal);
    const entries = await this.#run(path, signal, async (channel) => {
      const folder = this.#abs(path);
      const items = (await channel.readdir(folder)).filter((item) => !TEMP_NAME.test(item.filename));
      // Symbolic links are followed; dangling ones are left out.
      return Promise.all(
        items.map(async (item) => {
          const attrs = item.attrs.isSymbolicLink()
            ? await channel.stat(`${folder === "/" ? "" : folder}/${item.filename}`).catch(() => undefined)
            : item.attrs;
          return attrs && toEntry(joinPath(path, item.filename), attrs);
        }),
      );
    });
    for (const entry of entries) if (entry) yield entry;
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = await this.#locate(this.#check(path), signal);
    const attrs = await this.#run(at, signal, async (channel) => channel.stat(this.#abs(at)));
    const entry = toEntry(at, attrs);
    if (!entry) throw sftpFailure("NOT_FOUND", this.name, at, "neither a file nor a folder");
    return entry;
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, offset = 0 } = options;
    throwIfAborted(signal);
    const at = await this.#locate(this.#check(path), signal);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw sftpFailure("PROTOCOL", this.name, at, `offset ${offset} is not a byte position`);
    }
    const remote = await this.#remote.remote(at, signal);
    for (let attempt = 0; ; attempt++) {
      const lease = await this.#remote.lease(signal);
      let handle: Buffer | undefined;
      try {
        handle = await raceAbort(lease.channel.open(remote, OPEN_READ), signal);
        const attrs = await raceAbort(lease.channel.fstat(handle), signal);
        if (!attrs.isFile()) throw sftpFailure("NOT_FOUND", this.name, at, "not a file");
        const stream = new SftpReadStream({
          lease,
          handle,
          start: offset,
          size: attrs.size,
          fail: (error) => {
            if (isConnectionLoss(error)) lease.broken();
            return sftpError(error, this.name, at);
          },
        });
        return signal ? addAbortSignal(signal, stream) : stream;
      } catch (error) {
        if (handle) void lease.channel.close(handle).catch(() => undefined);
        if (isConnectionLoss(error)) {
          lease.broken();
          if (attempt === 0 && !lease.fresh && !signal?.aborted) continue;
        } else lease.release();
        if (signal?.aborted)
          throw new FerryError("ABORTED", `${this.name}: ${at}: aborted`, { cause: signal.reason });
        throw sftpError(error, this.name, at);
      }
    }
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const { signal, size, modTime } = options;
    let upload: Upload;
    try {
      upload = await this.openUpload(path, {
        size,
        ...(modTime === undefined ? {} : { modTime }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      // Refused before a byte was read (the server is down): the source must not stay open.
      closeSource(source);
      throw error;
    }
    try {
      return await upload.finish(source, signal ? { signal } : {});
    } catch (error) {
      // Nobody can resume a plain write: leave nothing behind.
      await upload.abort().catch((cleanup: unknown) => {
        this.#logger.debug({ path, err: cleanup }, "sftp: could not remove a temp file");
      });
      throw error;
    }
  }

  async openUpload(path: string, options: UploadOptions): Promise<Upload> {
    const { signal, size, modTime, resume } = options;
    throwIfAborted(signal);
    const checked = this.#check(path);
    if (checked === "") throw sftpFailure("NAME_INVALID", this.name, path, "cannot write to the root folder");
    if (!Number.isSafeInteger(size) || size < 0) {
      throw sftpFailure("PROTOCOL", this.name, checked, `size ${size} is not a byte count`);
    }
    const target = await this.#locate(checked, signal);
    if (target.split("/").some((name) => Buffer.byteLength(name) > MAX_NAME_BYTES)) {
      // Longer than most filesystems take: let the server say so before any byte goes.
      await this.#run(target, signal, async (channel) => {
        await channel.lstat(this.#abs(target)).catch((error: unknown) => {
          if (!isMissing(error)) throw error;
        });
      });
    }
    const token = tokenFor(resume, target);
    if (token) {
      const remote = await this.#run(target, signal, async (channel) => {
        const attrs = await channel.lstat(this.#abs(token.temp)).catch((error: unknown) => {
          if (isMissing(error)) return undefined;
          throw error;
        });
        return attrs && (attrs.isFile() ? attrs.size : Number.POSITIVE_INFINITY);
      });
      const offset = resumeOffset(token, size, modTime, remote);
      if (typeof offset === "number") {
        const plan = { target, temp: token.temp, size, modTime, offset };
        return new SftpUpload(this.#remote, plan, offset);
      }
      if (offset === "stale") {
        // Another version of the file, or a partial that lost data: throw it away (best effort:
        // a stale token never fails the upload).
        const stale = new SftpUpload(
          this.#remote,
          { ...freshPlan(target, size, modTime), temp: token.temp },
          0,
        );
        await stale.abort(signal ? { signal } : {}).catch((error: unknown) => {
          if (signal?.aborted) throw error;
          this.#logger.debug(
            { path: token.temp, err: error },
            "sftp: could not remove a stale partial upload",
          );
        });
      }
    }
    return new SftpUpload(this.#remote, freshPlan(target, size, modTime), 0);
  }

  async remove(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#check(path);
    if (checked === "") throw sftpFailure("NAME_INVALID", this.name, path, "will not remove the root folder");
    const at = await this.#locate(checked, signal);
    await this.#run(at, signal, async (channel) => {
      const remote = this.#abs(at);
      try {
        await channel.unlink(remote);
        return;
      } catch (error) {
        if (isMissing(error)) return;
        const stats = await channel.lstat(remote).catch(() => undefined);
        if (!stats?.isDirectory()) throw error;
      }
      await this.#removeFolder(channel, remote, at);
    });
  }

  async #removeFolder(channel: Channel, remote: string, path: string): Promise<void> {
    try {
      await channel.rmdir(remote);
      return;
    } catch (error) {
      if (isMissing(error)) return;
      const items = await channel.readdir(remote).catch(() => undefined);
      if (items === undefined || items.length === 0) throw error;
      // Temp files of uploads that died must not keep an otherwise empty folder alive.
      const now = Date.now() / 1000;
      const stale = items.every(
        (item) => TEMP_NAME.test(item.filename) && now - item.attrs.mtime > STALE_TEMP_MS / 1000,
      );
      if (!stale) throw sftpFailure("NOT_EMPTY", this.name, path, "folder is not empty", error);
      for (const item of items) await channel.unlink(`${remote}/${item.filename}`).catch(() => undefined);
      await channel.rmdir(remote);
    }
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = await this.#locate(this.#check(path), signal);
    await this.#run(at, signal, (channel) => this.#remote.makeFolders(channel, at));
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const source = await this.#locate(this.#check(from), signal);
    const target = await this.#locate(this.#check(to), signal);
    if (source === "" || target === "")
      throw sftpFailure("NAME_INVALID", this.name, from, "cannot move the root folder");
    await this.#run(target, signal, async (channel) => {
      try {
        await this.#remote.replace(channel, source, target);
        return;
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
      // The source or the target's folder is missing: make the folder, then again.
      await this.#remote.makeFolders(channel, dirname(target));
      try {
        await this.#remote.replace(channel, source, target);
      } catch (error) {
        if (!isMissing(error)) throw error;
        throw sftpError(error, this.name, source);
      }
    });
  }

  async setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = await this.#locate(this.#check(path), signal);
    const seconds = Math.floor(modTime / 1000);
    await this.#run(at, signal, async (channel) =>
      channel.setstat(this.#abs(at), { atime: Math.floor(Date.now() / 1000), mtime: seconds }),
    );
  }

  async usage(options: OpOptions = {}): Promise<Usage> {
    const { signal } = options;
    throwIfAborted(signal);
    const info = await this.#run("", signal, async (channel) => {
      if (!channel.statvfs)
        throw sftpFailure("UNSUPPORTED", this.name, "", "the server has no statvfs@openssh.com");
      return channel.fsInfo(this.#abs(""));
    });
    return {
      totalBytes: info.f_blocks * info.f_frsize,
      freeBytes: info.f_bavail * info.f_frsize,
      usedBytes: (info.f_blocks - info.f_bfree) * info.f_frsize,
    };
  }

  close(): Promise<void> {
    this.#remote.close();
    return Promise.resolve();
  }
}

export const sftpAdapter = defineStorageAdapter<SftpOptions>({
  ...sftpKind,
  create: (options, context) => new SftpStorage(options, context),
});
