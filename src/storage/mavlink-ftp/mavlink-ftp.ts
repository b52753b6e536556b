/**
 * A flight controller's files over MAVLink FTP as a StorageAdapter (`type: mavlink-ftp`): flight
 * logs listed, read (burst with gap refill, CRC32-verified), removed once delivered. The link is
 * opened on first use; the vehicle counts as reachable while its HEARTBEATs come (the connection
 * checker's listing of the root fails at once without them). Writes go to a temp name beside the
 * file and are renamed into place. See README.md.
 */
import { Readable } from "node:stream";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { ancestors, basename, dirname, normalizePath, pathKey } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type AdapterContext,
  type Capabilities,
  type Entry,
  type HashKind,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type WriteOptions,
} from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import { TEMP_NAME, tempName } from "../temp-names.ts";
import { FtpClient } from "./client.ts";
import { download, type DownloadStats } from "./download.ts";
import { FtpTimeout, isNak, mavError, mavFailure } from "./errors.ts";
import { MavlinkLink } from "./link.ts";
import {
  FORBIDDEN_CHARS,
  MAX_NAME_BYTES,
  mavlinkFtpCapabilities,
  mavlinkFtpKind,
  parseLinkUrl,
  type MavlinkFtpOptions,
} from "./options.ts";
import {
  DATA_BYTES,
  FTP_ERROR,
  hex32,
  OP,
  parseEntries,
  standardCrc32,
  type DirEntry,
} from "../../core/mavlink-ftp.ts";

export { mavlinkFtpCapabilities, mavlinkFtpOptionsSchema, type MavlinkFtpOptions } from "./options.ts";

const nul = (text: string) => Buffer.from(`${text}\0`);

export class MavlinkFtpStorage implements StorageAdapter {
  readonly kind = "mavlink-ftp";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities> = mavlinkFtpCapabilities;
  readonly #options: MavlinkFtpOptions;
  readonly #logger: Logger;
  readonly #link: MavlinkLink;
  readonly #client: FtpClient;
  readonly #root: string;
  #connected: Promise<void> | undefined;
  /** False once the vehicle NAKed ListDirectoryWithTime with UnknownCommand. */
  #withTime = true;
  /** What the last read did, for tests and the benchmark. */
  lastRead: DownloadStats | undefined;

  constructor(options: MavlinkFtpOptions, context: AdapterContext) {
    this.name = context.name;
    this.#options = options;
    this.#logger = context.logger;
    const root = options.root.replace(/\/+$/, "");
    this.#root = root === "" ? "/" : root;
    this.#link = new MavlinkLink({
      address: parseLinkUrl(options.url),
      systemId: options.system_id,
      componentId: options.component_id,
      targetSystem: options.target_system,
      targetComponent: options.target_component,
      logger: context.logger,
    });
    this.#client = new FtpClient(this.#link, {
      minTimeoutMs: options.min_timeout_ms,
      maxTimeoutMs: Math.max(options.max_timeout_ms, options.min_timeout_ms),
      tries: options.retries,
    });
  }

  /** The FTP client, for tests and the benchmark (retries, timeouts). */
  get client(): FtpClient {
    return this.#client;
  }

  // --- connection -------------------------------------------------------------------------------

  get #heartbeatMs(): number {
    return this.#options.heartbeat_timeout_s * 1000;
  }

  #alive(): boolean {
    const last = this.#link.lastHeartbeat;
    return last !== undefined && performance.now() - last < this.#heartbeatMs;
  }

  /** Resolves at the vehicle's next heartbeat (or one seen within the timeout), else UNAVAILABLE. */
  async #awaitHeartbeat(waitMs: number, fresh: boolean, signal?: AbortSignal): Promise<void> {
    if (!fresh && this.#alive()) return;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: FerryError) => {
        clearTimeout(timer);
        this.#link.off("heartbeat", onBeat);
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onBeat = () => {
        done();
      };
      const onAbort = () => {
        done(new FerryError("ABORTED", `${this.name}: aborted`, { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        const { target_system: sys, target_component: comp } = this.#options;
        done(
          mavFailure(
            "UNAVAILABLE",
            this.name,
            undefined,
            `no HEARTBEAT from system ${sys} component ${comp} on ${this.#options.url} for ${Math.round(waitMs / 1000)} s`,
          ),
        );
      }, waitMs);
      this.#link.on("heartbeat", onBeat);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Opens the link, waits for the vehicle and clears sessions left by an earlier run. */
  async #connect(signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    this.#connected ??= (async () => {
      await this.#link.open().catch((error: unknown) => {
        throw mavFailure(
          "UNAVAILABLE",
          this.name,
          undefined,
          `cannot open ${this.#options.url}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      });
      await this.#awaitHeartbeat(this.#heartbeatMs, false);
      await this.#resetSessions();
    })().catch((error: unknown) => {
      this.#connected = undefined;
      throw error;
    });
    await this.#connected;
    // A vehicle that went quiet is offline now, whatever it was at connect.
    if (!this.#alive()) await this.#awaitHeartbeat(this.#heartbeatMs, false, signal);
  }

  async #resetSessions(signal?: AbortSignal): Promise<void> {
    try {
      await this.#client.request({ opcode: OP.ResetSessions }, signal);
    } catch (error) {
      // A vehicle that cannot reset has nothing to reset; one that does not answer shows later.
      if (!(error instanceof FtpTimeout))
        this.#logger.debug({ err: error }, "mavlink-ftp: ResetSessions refused");
    }
  }

  /** After the vehicle went away mid-transfer: its next heartbeat (it rebooted), then a clean slate. */
  async #reconnect(signal?: AbortSignal): Promise<void> {
    this.#logger.info({ device: this.name }, "mavlink-ftp: vehicle stopped answering; waiting for it");
    await this.#awaitHeartbeat(this.#options.reboot_wait_s * 1000, true, signal);
    await this.#resetSessions(signal);
  }

  // --- paths ------------------------------------------------------------------------------------

  /** Normalized (NFC) Ferry path; NAME_INVALID for names the vehicle cannot take. */
  #check(input: string): string {
    const path = normalizePath(input).normalize("NFC");
    for (const name of path === "" ? [] : path.split("/")) {
      for (const char of FORBIDDEN_CHARS) {
        if (name.includes(char))
          throw mavFailure("NAME_INVALID", this.name, path, `names may not contain ${JSON.stringify(char)}`);
      }
      if (name.includes("\0")) throw mavFailure("NAME_INVALID", this.name, path, "names may not contain NUL");
      if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
        throw mavFailure("NAME_INVALID", this.name, path, `${name}: longer than ${MAX_NAME_BYTES} bytes`);
      }
      if (TEMP_NAME.test(name)) {
        throw mavFailure(
          "NAME_INVALID",
          this.name,
          path,
          "names like this are reserved for Ferry's temp files",
        );
      }
    }
    if (Buffer.byteLength(this.#remote(path)) + 1 > DATA_BYTES) {
      throw mavFailure(
        "NAME_INVALID",
        this.name,
        path,
        `the vehicle's path is longer than ${DATA_BYTES - 1} bytes`,
      );
    }
    return path;
  }

  #remote(path: string): string {
    if (path === "") return this.#root;
    return this.#root === "/" ? `/${path}` : `${this.#root}/${path}`;
  }

  // --- listing ----------------------------------------------------------------------------------

  async #listRaw(path: string, signal?: AbortSignal): Promise<DirEntry[]> {
    const entries: DirEntry[] = [];
    const data = nul(this.#remote(path));
    for (let offset = 0; ;) {
      throwIfAborted(signal);
      let answer;
      try {
        const opcode = this.#withTime ? OP.ListDirectoryWithTime : OP.ListDirectory;
        answer = await this.#client.request({ opcode, offset, data }, signal);
      } catch (error) {
        if (isNak(error, FTP_ERROR.EOF)) break;
        if (isNak(error, FTP_ERROR.UnknownCommand) && this.#withTime) {
          this.#withTime = false;
          continue;
        }
        throw error;
      }
      const { count, entries: got } = parseEntries(answer.data);
      if (count === 0) break;
      entries.push(...got);
      offset += count;
    }
    return entries.filter((entry) => !TEMP_NAME.test(entry.name));
  }

  #entry(path: string, entry: DirEntry): Entry {
    if (entry.type === "dir") return { path, type: "dir" };
    return {
      path,
      type: "file",
      size: entry.size ?? 0,
      ...(entry.mtime === undefined ? {} : { modTime: entry.mtime * 1000 }),
    };
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    if (options.recursive === true)
      throw mavFailure("UNSUPPORTED", this.name, dir, "lists one folder at a time");
    const path = this.#check(dir);
    await this.#connect(signal);
    const entries = await this.#listRaw(path, signal).catch((error: unknown) => {
      throw mavError(error, this.name, path);
    });
    for (const entry of entries) yield this.#entry(path === "" ? entry.name : `${path}/${entry.name}`, entry);
  }

  async #find(path: string, signal?: AbortSignal): Promise<Entry | undefined> {
    if (path === "") return { path: "", type: "dir" };
    let entries: DirEntry[];
    try {
      entries = await this.#listRaw(dirname(path), signal);
    } catch (error) {
      const failure = mavError(error, this.name, path);
      if (failure.code === "NOT_FOUND") return undefined;
      throw failure;
    }
    const key = pathKey(basename(path), true);
    const found = entries.find((entry) => pathKey(entry.name, true) === key);
    return found && this.#entry(dirname(path) === "" ? found.name : `${dirname(path)}/${found.name}`, found);
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = this.#check(path);
    await this.#connect(signal);
    const entry = await this.#find(at, signal);
    if (!entry) throw mavFailure("NOT_FOUND", this.name, at, "no such file or folder");
    return entry;
  }

  // --- reading ----------------------------------------------------------------------------------

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, offset = 0 } = options;
    throwIfAborted(signal);
    const at = this.#check(path);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw mavFailure("PROTOCOL", this.name, at, `offset ${offset} is not a byte position`);
    }
    await this.#connect(signal);
    const release = await this.#client.acquire(signal);
    const stats: DownloadStats = { received: 0, bursts: 0, refills: 0, recoveries: 0 };
    this.lastRead = stats;
    const context = {
      client: this.#client,
      device: this.name,
      path: at,
      remote: this.#remote(at),
      window: this.#options.window,
      reconnect: (s?: AbortSignal) => this.#reconnect(s),
      ...(signal ? { signal } : {}),
    };
    const chunks = download(context, offset, stats);
    // The first answer (OpenFileRO) decides NOT_FOUND and BUSY before the stream is handed out.
    let first: IteratorResult<Buffer>;
    try {
      first = await chunks.next();
    } catch (error) {
      release();
      throw mavError(error, this.name, at);
    }
    const device = this.name;
    async function* all(): AsyncGenerator<Buffer> {
      try {
        if (first.done === true) return;
        yield first.value;
        for (;;) {
          const step = await chunks.next();
          if (step.done === true) return;
          yield step.value;
        }
      } catch (error) {
        throw mavError(error, device, at);
      } finally {
        release();
        await chunks.return(undefined).catch(() => undefined);
      }
    }
    return Readable.from(all(), { objectMode: false });
  }

  async hash(path: string, kind: HashKind, options: OpOptions = {}): Promise<string> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = this.#check(path);
    if (kind !== "crc32")
      throw mavFailure("UNSUPPORTED", this.name, at, `the vehicle computes CRC32 only, not ${kind}`);
    await this.#connect(signal);
    const entry = await this.#find(at, signal);
    if (entry?.type !== "file") throw mavFailure("NOT_FOUND", this.name, at, "no such file");
    try {
      const answer = await this.#client.request(
        { opcode: OP.CalcFileCRC32, data: nul(this.#remote(at)) },
        signal,
      );
      // Reported as zlib computes CRC-32 (zip, gzip), comparable with other tools and targets.
      return hex32(standardCrc32(answer.data.readUInt32LE(0), entry.size ?? 0));
    } catch (error) {
      throw mavError(error, this.name, at);
    }
  }

  // --- writing ----------------------------------------------------------------------------------

  async #ensureFolder(path: string, signal?: AbortSignal): Promise<void> {
    for (const folder of [...ancestors(path), path]) {
      if (folder === "") continue;
      try {
        await this.#client.request({ opcode: OP.CreateDirectory, data: nul(this.#remote(folder)) }, signal);
      } catch (error) {
        if (isNak(error, FTP_ERROR.FileExists)) continue;
        // PX4 answers EEXIST as FailErrno.
        if (isNak(error, FTP_ERROR.FailErrno) && error.errno === 17) continue;
        throw mavError(error, this.name, folder);
      }
    }
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const { signal, size } = options;
    const close = () => {
      if (source instanceof Readable) source.destroy();
    };
    let at: string;
    try {
      throwIfAborted(signal);
      at = this.#check(path);
      if (at === "") throw mavFailure("NAME_INVALID", this.name, path, "cannot write to the root folder");
      if (!Number.isSafeInteger(size) || size < 0)
        throw mavFailure("PROTOCOL", this.name, at, `size ${size} is not a byte count`);
      await this.#connect(signal);
    } catch (error) {
      close();
      throw error;
    }
    const temp = `${dirname(at) === "" ? "" : `${dirname(at)}/`}${tempName()}`;
    const remoteTemp = this.#remote(temp);
    if (Buffer.byteLength(remoteTemp) + Buffer.byteLength(this.#remote(at)) + 2 > DATA_BYTES) {
      close();
      throw mavFailure(
        "NAME_INVALID",
        this.name,
        at,
        `the path is too long to rename into place in one message`,
      );
    }
    const release = await this.#client.acquire(signal).catch((error: unknown) => {
      close();
      throw error;
    });
    let created = false;
    let session = 0;
    try {
      await this.#ensureFolder(dirname(at), signal);
      const opened = await this.#client.request({ opcode: OP.CreateFile, data: nul(remoteTemp) }, signal);
      session = opened.session;
      created = true;
      await this.#send(opened.session, at, source, size, signal);
      this.#client.post({ opcode: OP.TerminateSession, session: opened.session });
      await this.#rename(remoteTemp, this.#remote(at), signal);
      created = false;
      return { path: at, type: "file", size };
    } catch (error) {
      close();
      throw mavError(error, this.name, at);
    } finally {
      if (created) {
        // Nothing under the final name, and no temp file left beside it.
        await this.#client
          .request({ opcode: OP.TerminateSession, session }, undefined, 2)
          .catch(() => undefined);
        await this.#client
          .request({ opcode: OP.RemoveFile, data: nul(remoteTemp) })
          .catch((error: unknown) => {
            this.#logger.debug({ path: temp, err: error }, "mavlink-ftp: could not remove a temp file");
          });
      }
      release();
    }
  }

  /** Sends the source in message-sized WriteFile requests, `window` in flight. */
  async #send(
    session: number,
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    size: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const inflight: Promise<unknown>[] = [];
    let offset = 0;
    let pending: Buffer = Buffer.alloc(0);
    const put = async (data: Buffer) => {
      const request = this.#client.request({ opcode: OP.WriteFile, session, offset, data }, signal);
      request.catch(() => undefined);
      inflight.push(request);
      offset += data.length;
      if (inflight.length >= this.#options.window) await inflight.shift();
    };
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      throwIfAborted(signal);
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      pending = pending.length === 0 ? bytes : Buffer.concat([pending, bytes]);
      if (offset + pending.length > size) throw sizeMismatch(this.name, path, size, "more");
      while (pending.length >= DATA_BYTES) {
        await put(pending.subarray(0, DATA_BYTES));
        pending = pending.subarray(DATA_BYTES);
      }
    }
    throwIfAborted(signal);
    if (pending.length > 0) await put(pending);
    if (offset !== size) throw sizeMismatch(this.name, path, size, `${offset} bytes`);
    for (const request of inflight) await request;
  }

  async #rename(from: string, to: string, signal?: AbortSignal): Promise<void> {
    const data = Buffer.concat([nul(from), nul(to)]);
    try {
      await this.#client.request({ opcode: OP.Rename, data }, signal);
    } catch (error) {
      // Vehicles on FAT refuse to rename over a file: remove it, then again.
      const exists =
        isNak(error, FTP_ERROR.FileExists) || (isNak(error, FTP_ERROR.FailErrno) && error.errno === 17);
      if (!exists) throw error;
      await this.#client.request({ opcode: OP.RemoveFile, data: nul(to) }, signal);
      await this.#client.request({ opcode: OP.Rename, data }, signal);
    }
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const source = this.#check(from);
    const target = this.#check(to);
    if (source === "" || target === "")
      throw mavFailure("NAME_INVALID", this.name, from, "cannot move the root folder");
    if (Buffer.byteLength(this.#remote(source)) + Buffer.byteLength(this.#remote(target)) + 2 > DATA_BYTES) {
      throw mavFailure("NAME_INVALID", this.name, target, "the two paths do not fit in one Rename message");
    }
    await this.#connect(signal);
    try {
      await this.#ensureFolder(dirname(target), signal);
      await this.#rename(this.#remote(source), this.#remote(target), signal);
    } catch (error) {
      throw mavError(error, this.name, source);
    }
  }

  async remove(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = this.#check(path);
    if (at === "") throw mavFailure("NAME_INVALID", this.name, path, "will not remove the root folder");
    await this.#connect(signal);
    const data = nul(this.#remote(at));
    try {
      await this.#client.request({ opcode: OP.RemoveFile, data }, signal);
      return;
    } catch (error) {
      if (isNak(error, FTP_ERROR.FileNotFound)) return;
      const entry = await this.#find(at, signal);
      if (!entry) return;
      if (entry.type !== "dir") throw mavError(error, this.name, at);
    }
    try {
      await this.#client.request({ opcode: OP.RemoveDirectory, data }, signal);
    } catch (error) {
      if (isNak(error, FTP_ERROR.FileNotFound)) return;
      const failure = mavError(error, this.name, at);
      if (failure.code === "NOT_EMPTY") throw failure;
      // Vehicles that say only "Fail": a folder with something in it is the usual reason.
      const left = await this.#listRaw(at, signal).catch(() => []);
      if (left.length > 0)
        throw mavFailure("NOT_EMPTY", this.name, at, "folder is not empty", { cause: error });
      throw failure;
    }
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const at = this.#check(path);
    await this.#connect(signal);
    await this.#ensureFolder(at, signal);
  }

  close(): Promise<void> {
    this.#link.close();
    return Promise.resolve();
  }
}

export const mavlinkFtpAdapter = defineStorageAdapter<MavlinkFtpOptions>({
  ...mavlinkFtpKind,
  create: (options, context) => new MavlinkFtpStorage(options, context),
});
