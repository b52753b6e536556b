/**
 * An FTP server (plain, explicit FTPS with AUTH TLS, or implicit FTPS) as a StorageAdapter, on
 * basic-ftp. Every operation leases a logged-in connection from a pool (basic-ftp does one thing
 * at a time per connection), so `connections` transfers run at once. Writes are resumable uploads
 * to a temp name renamed into place (upload.ts). Paths are absolute under `root`; names are sent
 * as UTF-8 bytes (OPTS UTF8 ON). A name that does not exist as given is looked up in NFC among
 * its folder's entries, so a file stored in NFD (from a Mac) is found by its NFC name.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { FTPError, type Client } from "basic-ftp";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { basename, dirname, joinPath } from "../../core/paths.ts";
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
  type WriteOptions,
} from "../adapter.ts";
import { connect } from "./connect.ts";
import { ftpError, ftpFailure, type FtpAction } from "./errors.ts";
import { Folders } from "./folders.ts";
import {
  TEMP_NAME,
  checkPath,
  ftpTimestamp,
  isAscii,
  normalizeRoot,
  parseMdtm,
  remotePath,
} from "./names.ts";
import { ftpCapabilities, ftpKind, type FtpOptions } from "./options.ts";
import { FtpPool } from "./pool.ts";
import { Queries } from "./queries.ts";
import { download } from "./transfer.ts";
import { openFtpUpload, type UploadHost } from "./upload.ts";

export { ftpCapabilities, ftpOptionsSchema, type FtpOptions } from "./options.ts";

/** A Ferry temp file untouched this long belongs to an upload that died; it may go with its folder. */
const STALE_TEMP_MS = 15 * 60_000;

class FtpStorage implements StorageAdapter, UploadHost {
  readonly kind = "ftp";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities>;
  readonly pool: FtpPool;
  readonly logger: Logger;
  readonly #root: string;
  readonly #folders: Folders;
  readonly #queries: Queries;
  /** How this server sets times: MFMT, vsftpd's two-argument MDTM, or not at all. */
  #timeCommand: "MFMT" | "MDTM" | undefined;
  /** Whether the server's FEAT answer was read (by the first connection). */
  #learned = false;

  constructor(options: FtpOptions, context: AdapterContext) {
    this.name = context.name;
    this.logger = context.logger;
    this.#root = normalizeRoot(options.root);
    this.capabilities = Object.freeze({ ...ftpCapabilities, maxConcurrency: options.connections });
    const caPath = options.ca_file === undefined ? undefined : resolve(context.baseDir, options.ca_file);
    let ca: Promise<Buffer> | undefined;
    const readCa = () => {
      if (caPath === undefined) return Promise.resolve(undefined);
      ca ??= readFile(caPath).catch((error: unknown) => {
        ca = undefined;
        throw new FerryError("AUTH", `${this.name}: cannot read ca_file ${caPath}: ${String(error)}`, {
          subject: this.name,
          cause: error,
        });
      });
      return ca;
    };
    const secure = options.secure;
    const settings = {
      device: this.name,
      host: options.host,
      port: options.port ?? (secure === "implicit" ? 990 : 21),
      username: options.username,
      password: options.password,
      secure,
      ca: readCa,
    };
    this.pool = new FtpPool(async () => {
      const first = !this.#learned;
      const session = await connect(settings, first);
      if (first) this.#learn(session.features);
      return session.client;
    }, options.connections);
    this.#folders = new Folders(this.name, (path) => this.remote(path));
    this.#queries = new Queries((path) => this.remote(path));
  }

  #learn(features: Map<string, string>): void {
    this.#learned = true;
    this.#timeCommand = features.has("MFMT") ? "MFMT" : features.has("MDTM") ? "MDTM" : undefined;
  }

  remote(path: string): string {
    return remotePath(this.#root, path);
  }

  map(error: unknown, path: string, action: FtpAction): FerryError {
    return ftpError(error, { device: this.name, path, action });
  }

  #check(path: string): string {
    return checkPath(this.name, path);
  }

  /** Runs `work` on a pooled connection, translating what it throws. */
  #run<T>(signal: AbortSignal | undefined, path: string, action: FtpAction, work: (c: Client) => Promise<T>) {
    throwIfAborted(signal);
    return this.pool.use(signal, work).catch((error: unknown) => {
      throw this.map(error, path, action);
    });
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#check(dir);
    if (options.recursive === true) {
      throw ftpFailure(
        "UNSUPPORTED",
        { device: this.name, path: checked, action: "list" },
        "lists one folder at a time",
      );
    }
    const entries = await this.#run(signal, checked, "list", async (client) => {
      let at = checked;
      if (!(await this.#queries.isDir(client, at))) {
        at = await this.#queries.locate(client, checked);
        if (at === checked || !(await this.#queries.isDir(client, at))) throw this.#missing(checked, "list");
      }
      return this.#queries.listing(client, at);
    });
    yield* entries;
  }

  #missing(path: string, action: FtpAction): FerryError {
    return ftpFailure("NOT_FOUND", { device: this.name, path, action }, "no such file or folder");
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    const checked = this.#check(path);
    return this.#run(options.signal, checked, "stat", async (client) => {
      const entry = await this.#queries.stat(client, checked);
      if (entry) return entry;
      const located = await this.#queries.locate(client, checked);
      const again = located === checked ? undefined : await this.#queries.stat(client, located);
      if (again) return again;
      throw this.#missing(checked, "stat");
    });
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, offset = 0 } = options;
    throwIfAborted(signal);
    const checked = this.#check(path);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw ftpFailure(
        "PROTOCOL",
        { device: this.name, path: checked, action: "read" },
        `offset ${offset} is not a byte position`,
      );
    }
    const mapped = (error: unknown) =>
      signal?.aborted
        ? new FerryError("ABORTED", "operation aborted", { cause: signal.reason })
        : this.map(error, checked, "read");
    const { lease, value } = await this.pool
      .hold(signal, async (client) => {
        const retrieve = (at: string) =>
          download(client, this.remote(at), offset, mapped).catch((error: unknown) => {
            if (error instanceof FTPError && error.code === 550) return undefined;
            // Before the 150 nothing is in flight, but the connection's state is unknown.
            if (!(error instanceof FTPError)) client.close();
            throw error;
          });
        const started = await retrieve(checked);
        if (started) return started;
        const located = await this.#queries.locate(client, checked);
        const again = located === checked ? undefined : await retrieve(located);
        if (again) return again;
        throw this.#missing(checked, "read");
      })
      .catch((error: unknown) => {
        throw mapped(error);
      });
    const { stream, done } = value;
    const client = lease.client;
    const onAbort = () => client.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    let over = false;
    done.then(
      () => {
        over = true;
        signal?.removeEventListener("abort", onAbort);
        lease.release();
      },
      () => {
        over = true;
        signal?.removeEventListener("abort", onAbort);
        lease.discard();
      },
    );
    // A reader that stops early leaves the transfer running: end it with its connection.
    stream.once("close", () => {
      if (!over) client.close();
    });
    if (signal?.aborted) client.close();
    return stream;
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const upload = await this.openUpload(path, options);
    try {
      return await upload.finish(source, options.signal ? { signal: options.signal } : {});
    } catch (error) {
      // Nobody keeps this upload's token: throw the partial away.
      await upload.abort().catch((cleanup: unknown) => {
        this.logger.debug({ path, err: cleanup }, "could not remove a failed upload's temp file");
      });
      throw error;
    }
  }

  async openUpload(path: string, options: UploadOptions): Promise<Upload> {
    const { signal, size } = options;
    throwIfAborted(signal);
    const checked = this.#check(path);
    const context = { device: this.name, path: checked, action: "upload" as const };
    if (checked === "") throw ftpFailure("NAME_INVALID", context, "cannot write to the root folder");
    if (!Number.isSafeInteger(size) || size < 0)
      throw ftpFailure("PROTOCOL", context, `size ${size} is not a byte count`);
    const target = isAscii(checked)
      ? checked
      : await this.#run(signal, checked, "upload", (client) => this.#queries.locate(client, checked));
    return openFtpUpload(this, target, options);
  }

  ensureDir(client: Client, dir: string): Promise<boolean> {
    return this.#folders.ensure(client, dir);
  }

  forgetDir(dir: string): void {
    this.#folders.forget(dir);
  }

  async setTime(client: Client, path: string, remote: string, modTime: number): Promise<boolean> {
    const command = this.#timeCommand;
    if (command === undefined) return false;
    const reply = await client.sendIgnoringError(`${command} ${ftpTimestamp(modTime)} ${remote}`);
    if (reply.code >= 200 && reply.code < 300) return true;
    if (reply.code >= 500 && reply.code <= 504) {
      this.logger.warn({ path, reply: reply.message }, "the server cannot set modification times");
      this.#timeCommand = undefined;
      return false;
    }
    throw new FTPError(reply);
  }

  async rename(client: Client, fromRemote: string, to: string): Promise<void> {
    const from = await client.sendIgnoringError(`RNFR ${fromRemote}`);
    if (from.code !== 350) throw new FTPError(from);
    const reply = await client.sendIgnoringError(`RNTO ${this.remote(to)}`);
    if (reply.code >= 200 && reply.code < 300) return;
    if (reply.code !== 550 && reply.code !== 553) throw new FTPError(reply);
    // The temp file in the same folder was accepted: the server refuses this name, or a folder has it.
    const context = { device: this.name, path: to, action: "rename" as const };
    if ((await this.#queries.stat(client, to))?.type === "dir") {
      throw ftpFailure("EXISTS", context, `a folder has that name (${reply.message.trim()})`);
    }
    throw ftpFailure(
      "NAME_INVALID",
      context,
      `the server refused the name "${basename(to)}" (${reply.message.trim()})`,
    );
  }

  async remove(path: string, options: OpOptions = {}): Promise<void> {
    const checked = this.#check(path);
    if (checked === "") {
      throw ftpFailure(
        "NAME_INVALID",
        { device: this.name, path, action: "remove" },
        "will not remove the root folder",
      );
    }
    await this.#run(options.signal, checked, "remove", async (client) => {
      if (await this.#removeWith(client, checked)) return;
      const located = await this.#queries.locate(client, checked);
      if (located !== checked) await this.#removeWith(client, located);
    });
  }

  /** DELE, else RMD; true when something was removed or is known to be absent. */
  async #removeWith(client: Client, path: string): Promise<boolean> {
    const remote = this.remote(path);
    const dele = await client.sendIgnoringError(`DELE ${remote}`);
    if (dele.code >= 200 && dele.code < 300) return true;
    if (dele.code !== 550) throw new FTPError(dele);
    const context = { device: this.name, path, action: "remove" as const };
    if (!(await this.#queries.isDir(client, path))) {
      if ((await client.sendIgnoringError(`SIZE ${remote}`)).code === 213) {
        throw ftpFailure("PERMISSION", context, `the server refused to delete it (${dele.message.trim()})`);
      }
      return isAscii(path); // absent: done, unless an NFC lookup may still find it
    }
    const left = await this.#clearStaleTemps(client, path);
    const rmd = await client.sendIgnoringError(`RMD ${remote}`);
    if (rmd.code >= 200 && rmd.code < 300) {
      this.#folders.forget(path);
      return true;
    }
    const said = rmd.message.trim();
    if (left === 0)
      throw ftpFailure("PERMISSION", context, `the server refused to remove the folder (${said})`);
    throw ftpFailure("NOT_EMPTY", context, `folder is not empty (${said})`);
  }

  /**
   * Temp files of uploads that died long ago must not keep an otherwise empty folder alive: they
   * are deleted. Gives how many entries the folder (the connection stands in it) still holds.
   */
  async #clearStaleTemps(client: Client, path: string): Promise<number> {
    const names = (await client.list()).map((info) => info.name);
    if (names.length === 0 || !names.every((name) => TEMP_NAME.test(name))) return names.length;
    for (const name of names) {
      const mdtm = await client.sendIgnoringError(`MDTM ${this.remote(joinPath(path, name))}`);
      const time = mdtm.code === 213 ? parseMdtm(mdtm.message) : undefined;
      if (time === undefined || Date.now() - time < STALE_TEMP_MS) return names.length;
    }
    for (const name of names) await client.sendIgnoringError(`DELE ${this.remote(joinPath(path, name))}`);
    return 0;
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    const checked = this.#check(path);
    await this.#run(options.signal, checked, "mkdir", async (client) => {
      await this.#folders.ensure(client, await this.#queries.locate(client, checked));
    });
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    const source = this.#check(from);
    const target = this.#check(to);
    if (source === "" || target === "") {
      throw ftpFailure(
        "NAME_INVALID",
        { device: this.name, path: from, action: "rename" },
        "cannot move the root folder",
      );
    }
    await this.#run(options.signal, source, "rename", async (client) => {
      const at = await this.#queries.locate(client, source);
      if (!(await this.#queries.stat(client, at))) throw this.#missing(source, "rename");
      const into = await this.#queries.locate(client, target);
      await this.#folders.ensure(client, dirname(into));
      await this.rename(client, this.remote(at), into);
      this.#folders.forget(at);
    });
  }

  async setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    const checked = this.#check(path);
    await this.#run(options.signal, checked, "set-time", async (client) => {
      let at = checked;
      if (!(await this.#queries.stat(client, at))) at = await this.#queries.locate(client, checked);
      if (!(await this.setTime(client, at, this.remote(at), modTime))) {
        throw ftpFailure(
          "UNSUPPORTED",
          { device: this.name, path: at, action: "set-time" },
          "the server cannot set modification times (no MFMT, no MDTM with a time)",
        );
      }
    });
  }

  close(): Promise<void> {
    this.pool.close();
    return Promise.resolve();
  }
}

export const ftpAdapter = defineStorageAdapter<FtpOptions>({
  ...ftpKind,
  create: (options, context) => new FtpStorage(options, context),
});
