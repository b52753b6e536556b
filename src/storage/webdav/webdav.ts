/**
 * A WebDAV collection (Apache mod_dav, nginx dav + dav-ext, any RFC 4918 server) as a
 * StorageAdapter. Listings are PROPFIND Depth 1, folders MKCOL (parents first when the server
 * answers 409), moves MOVE with `Overwrite: T`, reads GET with Range. A write is one PUT with
 * Content-Length, which Apache and nginx store atomically (to a temp file, renamed when complete),
 * so an interrupted write leaves the old file or nothing. Resumable uploads: see upload.ts.
 *
 * Folders known to exist (made, listed or stat'ed here) are remembered, so a write into one costs
 * a single request. Names are stored as given; a non-ASCII name not found as given is matched in
 * NFC against its folder's entries (a file written NFD from macOS is found by its NFC name).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { FerryError, toFerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { basename, dirname, normalizePath } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type AdapterContext,
  type Entry,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Upload,
  type UploadOptions,
  type WriteOptions,
} from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import { ByteReader } from "./bytes.ts";
import { DavClient } from "./client.ts";
import { checkAborted, davError, networkError, type ErrorContext } from "./errors.ts";
import { dump, isAscii, Remote } from "./remote.ts";
import { webdavKind, type WebdavOptions } from "./options.ts";
import { openResumableUpload, TEMP_NAME } from "./upload.ts";

export { webdavOptionsSchema, type WebdavOptions } from "./options.ts";

/** A Ferry temp file untouched this long belongs to an upload that died: it does not keep a folder. */
const STALE_TEMP_MS = 15 * 60_000;
const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/** Knobs for tests, not configuration. */
export interface WebdavTuning {
  /** Bytes per ranged PUT of a resumable upload (default 16 MiB). */
  chunkBytes?: number;
  nonceRefreshMs?: number;
  clock?: () => number;
}

export class WebdavStorage implements StorageAdapter {
  readonly kind = webdavKind.kind;
  readonly name: string;
  readonly capabilities = webdavKind.capabilities;
  readonly #remote: Remote;

  constructor(client: DavClient, logger: Logger, tuning: WebdavTuning) {
    this.name = client.device;
    this.#remote = new Remote(client, logger, tuning.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  }

  #context(operation: string, path: string): ErrorContext {
    return { device: this.name, operation, path };
  }

  /** Normalizes a contract path and refuses names this target cannot store. */
  #check(input: string, operation: string): string {
    const path = normalizePath(input);
    for (const name of path === "" ? [] : path.split("/")) {
      if (name.includes("\0")) {
        throw davError("NAME_INVALID", this.#context(operation, path), "names may not contain NUL");
      }
      if (TEMP_NAME.test(name)) {
        const why = "names like this are reserved for Ferry's temp files";
        throw davError("NAME_INVALID", this.#context(operation, path), why);
      }
    }
    return path;
  }

  #checkFile(input: string, operation: string): string {
    const path = this.#check(input, operation);
    if (path === "")
      throw davError("NAME_INVALID", this.#context(operation, path), "not for the root collection");
    return path;
  }

  #checkSize(size: number, path: string): void {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw davError("PROTOCOL", this.#context("upload", path), `size ${size} is not a byte count`);
    }
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    checkAborted(signal, this.#context("list", dir));
    const path = this.#check(dir, "list");
    const context = this.#context("list", path);
    if (options.recursive === true) throw davError("UNSUPPORTED", context, "lists one folder at a time");
    const listing = await this.#remote.find(path, "1", signal, "list");
    if (!listing) throw davError("NOT_FOUND", context, "no such folder");
    if (listing.self.type !== "dir") throw davError("NOT_FOUND", context, "a file, not a folder");
    this.#remote.remember([listing.self, ...listing.children]);
    for (const child of listing.children) if (!TEMP_NAME.test(basename(child.path))) yield child;
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    checkAborted(options.signal, this.#context("stat", path));
    const at = this.#check(path, "stat");
    const entry = (await this.#remote.find(at, "0", options.signal, "stat"))?.self;
    if (!entry) throw davError("NOT_FOUND", this.#context("stat", at), "no such file or folder");
    this.#remote.remember([entry]);
    return entry;
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, offset = 0 } = options;
    checkAborted(signal, this.#context("read", path));
    const at = this.#checkFile(path, "read");
    const context = this.#context("read", at);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw davError("PROTOCOL", context, `offset ${offset} is not a byte position`);
    }
    const get = (target: string) =>
      this.#remote.client.send({
        method: "GET",
        path: target,
        headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
        signal,
        operation: "read",
      });
    let res = await get(at);
    if (res.status === 404 && !isAscii(at)) {
      const located = await this.#remote.matchNfc(at, signal, "read");
      if (located !== at) {
        await dump(res);
        res = await get(located);
      }
    }
    if (res.status === 416) {
      // A range from the very end: nothing to read, if the file is that long (Apache does not say).
      const said = /\*\/(\d+)/.exec(res.headers["content-range"] ?? "")?.[1];
      await dump(res);
      const total = said === undefined ? await this.#remote.fileSize(at, signal) : Number(said);
      if (total === offset) return Readable.from([]);
      throw davError("PROTOCOL", context, `offset ${offset} is past the end (${total ?? "?"} bytes)`);
    }
    if (offset > 0 && res.status === 200) {
      await dump(res);
      throw davError("UNSUPPORTED", context, "the server ignored the Range header: no reads from an offset");
    }
    if (res.status === 301 || res.status === 302) {
      // nginx redirects a GET of a folder to its URL with a slash.
      await dump(res);
      throw davError("NOT_FOUND", context, "a folder, not a file");
    }
    if (res.status !== 200 && res.status !== 206) return this.#remote.fail(res, context);
    const body = res.body;
    async function* mapped(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) yield chunk as Uint8Array;
      } catch (error) {
        throw networkError(error, context, signal);
      }
    }
    return Readable.from(mapped(), { objectMode: false });
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const { signal, size } = options;
    try {
      checkAborted(signal, this.#context("upload", path));
      const checked = this.#checkFile(path, "upload");
      this.#checkSize(size, checked);
      const target = await this.#remote.locate(checked, signal, "upload");
      await this.#remote.ensureFolder(dirname(target), signal);
      const reader = new ByteReader(source, 0, (got) => sizeMismatch(this.name, target, size, got));
      await this.#remote.put(target, reader, size, { last: true }, signal);
      return { path: target, type: "file", size };
    } catch (error) {
      if (source instanceof Readable) source.destroy();
      throw toFerryError(error);
    }
  }

  async openUpload(path: string, options: UploadOptions): Promise<Upload> {
    checkAborted(options.signal, this.#context("upload", path));
    const checked = this.#checkFile(path, "upload");
    this.#checkSize(options.size, checked);
    const target = await this.#remote.locate(checked, options.signal, "upload");
    return openResumableUpload(this.#remote, target, options);
  }

  /** Whether this server keeps ranged PUTs (probed once per instance, on a scratch file in `folder`). */
  detectRangedPut(options: OpOptions & { folder?: string } = {}): Promise<boolean> {
    return this.#remote.rangedPut(options.folder ?? "", options.signal);
  }

  async remove(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    checkAborted(signal, this.#context("remove", path));
    const at = this.#checkFile(path, "remove");
    // DELETE of a collection deletes its content: look first.
    const listing = await this.#remote.find(at, "1", signal, "remove");
    if (!listing) return;
    const { self, children } = listing;
    if (self.type === "file") return this.#remote.delete(self.path, false, signal, "remove");
    const now = Date.now();
    const stale = (e: Entry) =>
      TEMP_NAME.test(basename(e.path)) && e.modTime !== undefined && now - e.modTime > STALE_TEMP_MS;
    if (!children.every(stale)) {
      throw davError("NOT_EMPTY", this.#context("remove", self.path), "folder is not empty");
    }
    this.#remote.forget(self.path);
    await this.#remote.delete(self.path, true, signal, "remove");
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    checkAborted(options.signal, this.#context("mkdir", path));
    const at = this.#check(path, "mkdir");
    if (at === "") return;
    await this.#remote.ensureFolder(await this.#remote.locate(at, options.signal, "mkdir"), options.signal);
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    checkAborted(signal, this.#context("move", from));
    const source = await this.#remote.locate(this.#checkFile(from, "move"), signal, "move");
    const target = await this.#remote.locate(this.#checkFile(to, "move"), signal, "move");
    await this.#remote.ensureFolder(dirname(target), signal);
    await this.#remote.move(source, target, signal, true);
  }

  close(): Promise<void> {
    return this.#remote.client.close();
  }
}

/** Opens the adapter (tests pass `tuning`). */
export function openWebdavStorage(
  options: WebdavOptions,
  context: AdapterContext,
  tuning: WebdavTuning = {},
): WebdavStorage {
  const url = new URL(options.url);
  const caFile = options.ca_file === undefined ? undefined : resolve(context.baseDir, options.ca_file);
  const client = new DavClient({
    url,
    device: context.name,
    username: options.username,
    password: options.password,
    auth: options.auth,
    ca:
      caFile === undefined
        ? undefined
        : () => {
            try {
              return readFileSync(caFile, "utf8");
            } catch (error) {
              throw new FerryError("NOT_FOUND", `${context.name}: cannot read ca_file ${caFile}`, {
                cause: error,
                retryable: false,
              });
            }
          },
    logger: context.logger,
    connections: webdavKind.capabilities.maxConcurrency + 2,
    ...(tuning.clock ? { clock: tuning.clock } : {}),
    ...(tuning.nonceRefreshMs === undefined ? {} : { nonceRefreshMs: tuning.nonceRefreshMs }),
  });
  return new WebdavStorage(client, context.logger, tuning);
}

export const webdavAdapter = defineStorageAdapter<WebdavOptions>({
  ...webdavKind,
  create: (options, context) => openWebdavStorage(options, context),
});
