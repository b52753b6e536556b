/**
 * A Moonraker (Klipper) printer's `gcodes` root as a StorageAdapter, over Moonraker's file API.
 * Paths are relative to the root and sent in NFC (the printer's Linux file system compares bytes).
 */
import type { Readable } from "node:stream";
import { FerryError, isFerryError, throwIfAborted } from "../../core/errors.ts";
import { ancestors, basename, dirname, joinPath, normalizePath } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type AdapterContext,
  type Capabilities,
  type Entry,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Usage,
  type WriteOptions,
} from "../../storage/adapter.ts";
import { apiKeyInClear } from "../driver.ts";
import type { CallOptions } from "../http.ts";
import { directorySchema, fileActionSchema, parseWire, type WireDirectory } from "./api-types.ts";
import { MoonrakerClient, type MoonrakerClientOptions } from "./client.ts";
import { KIND, moonrakerOptionsSchema, type MoonrakerOptions } from "./options.ts";
import { MoonrakerCallError } from "./errors.ts";

const ROOT = "gcodes";

/**
 * Characters a name cannot carry through Moonraker's upload form: the quote and backslash of the
 * multipart header's quoted file name (control characters are refused too).
 */
export const MOONRAKER_FORBIDDEN = '"\\';

/** Tuning for tests. */
export type ClientTuning = Pick<MoonrakerClientOptions, "timeoutMs" | "connectTimeoutMs">;

export const moonrakerCapabilities: Readonly<Capabilities> = Object.freeze({
  read: true,
  write: true,
  // `/server/files/list` walks the whole root but only names G-code files and no folders; the
  // per-folder `/server/files/directory` names everything.
  list: "flat",
  listSizes: true,
  modTimePrecisionMs: 1,
  setModTime: false,
  // Moonraker checks a SHA-256 on upload but lists no hashes.
  hashes: [],
  rangeRead: true,
  resumableWrite: "none",
  // An upload streams to a temp file and is moved under its name once complete.
  partialWritesVisible: false,
  atomicRename: false,
  serverSideMove: false,
  // Moonraker names an upload's temp file by the second it started (`moonraker.upload-<s>.mru`):
  // two uploads that start within the same second write into one file. One at a time.
  maxConcurrency: 1,
  forbiddenChars: MOONRAKER_FORBIDDEN,
  maxNameBytes: 255,
  caseInsensitive: false,
  watch: false,
  usage: true,
  removable: false,
});

export function createClient(
  options: MoonrakerOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): MoonrakerClient {
  return new MoonrakerClient({
    url: options.url,
    printer: context.name,
    ...(options.api_key === undefined ? {} : { apiKey: options.api_key }),
    ...tuning,
  });
}

const callOptions = (options: OpOptions | undefined, subject: string, operation: string): CallOptions => ({
  signal: options?.signal,
  subject: subject === "" ? undefined : subject,
  operation,
});

/** A Ferry path as Moonraker wants it: NFC (Linux compares bytes; Ferry compares names in NFC). */
const at = (path: string) => normalizePath(path).normalize("NFC");

function checkName(printer: string, path: string): void {
  for (const name of path.split("/")) {
    for (const ch of name) {
      if (MOONRAKER_FORBIDDEN.includes(ch) || ch.charCodeAt(0) < 0x20 || ch === "\x7f") {
        throw new FerryError(
          "NAME_INVALID",
          `${printer}: "${name}" contains ${JSON.stringify(ch)}, which Moonraker's upload form cannot carry`,
          { subject: path },
        );
      }
    }
    // Moonraker strips white space around an uploaded file's name: it would be stored as another.
    if (name.trim() !== name) {
      throw new FerryError("NAME_INVALID", `${printer}: "${name}" begins or ends with white space`, {
        subject: path,
      });
    }
    if (Buffer.byteLength(name) > 255) {
      throw new FerryError("NAME_INVALID", `${printer}: "${name}" is longer than 255 bytes`, {
        subject: path,
      });
    }
  }
}

/** Moonraker's 400 for a path that is no folder (missing, or a file). */
const NO_DIRECTORY = /directory does not exist/i;

export class MoonrakerStorage implements StorageAdapter {
  readonly kind = KIND;
  readonly name: string;
  readonly capabilities = moonrakerCapabilities;
  readonly #client: MoonrakerClient;
  readonly #ownsClient: boolean;

  constructor(client: MoonrakerClient, options: { ownsClient: boolean }) {
    this.#client = client;
    this.name = client.printer;
    this.#ownsClient = options.ownsClient;
  }

  /** GET /server/files/directory of a folder; NOT_FOUND when it is no folder. */
  async #directory(dir: string, options: OpOptions | undefined, operation: string): Promise<WireDirectory> {
    const call = { ...callOptions(options, dir, operation), query: { path: joinPath(ROOT, dir) } };
    try {
      return await this.#client.result("GET", "/server/files/directory", directorySchema, call);
    } catch (error) {
      if (
        error instanceof MoonrakerCallError &&
        error.fault.code === 400 &&
        NO_DIRECTORY.test(error.fault.message)
      ) {
        throw new FerryError("NOT_FOUND", `${this.name}: ${operation} ${dir}: no such folder`, {
          subject: dir,
          cause: error,
        });
      }
      throw error;
    }
  }

  async *list(dir: string, options?: ListOptions): AsyncIterable<Entry> {
    const path = at(dir);
    const listing = await this.#directory(path, options, "list");
    for (const d of listing.dirs)
      yield { path: joinPath(path, d.dirname), type: "dir", modTime: d.modified * 1000 };
    for (const f of listing.files) {
      yield { path: joinPath(path, f.filename), type: "file", size: f.size, modTime: f.modified * 1000 };
    }
  }

  async stat(path: string, options?: OpOptions): Promise<Entry> {
    const target = at(path);
    throwIfAborted(options?.signal);
    if (target === "") return { path: "", type: "dir" };
    const name = basename(target);
    let listing: WireDirectory;
    try {
      listing = await this.#directory(dirname(target), options, "stat");
    } catch (error) {
      if (isFerryError(error, "NOT_FOUND")) throw this.#notFound(target);
      throw error;
    }
    const file = listing.files.find((f) => f.filename.normalize("NFC") === name);
    if (file) return { path: target, type: "file", size: file.size, modTime: file.modified * 1000 };
    const folder = listing.dirs.find((d) => d.dirname.normalize("NFC") === name);
    if (folder) return { path: target, type: "dir", modTime: folder.modified * 1000 };
    throw this.#notFound(target);
  }

  #notFound(path: string): FerryError {
    return new FerryError("NOT_FOUND", `${this.name}: ${path} does not exist`, { subject: path });
  }

  async read(path: string, options?: ReadOptions): Promise<Readable> {
    const target = at(path);
    const call = callOptions(options, target, "read");
    try {
      return await this.#client.download(ROOT, target, options?.offset ?? 0, call);
    } catch (error) {
      if (error instanceof MoonrakerCallError && error.fault.code === 404) throw this.#notFound(target);
      throw error;
    }
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const target = at(path);
    throwIfAborted(options.signal);
    if (target === "")
      throw new FerryError("NAME_INVALID", `${this.name}: cannot write to the root`, { subject: target });
    checkName(this.name, target);
    const call = callOptions(options, target, "upload");
    const res = await this.#client.upload(
      { dir: dirname(target), name: basename(target), size: options.size },
      source,
      call,
    );
    const json = await this.#client.json(res, this.#client.about("upload", target), options.signal);
    const { item } = parseWire(fileActionSchema, json, `${this.name}: upload`, target);
    if (item.size !== options.size) {
      throw new FerryError(
        "PROTOCOL",
        `${this.name}: ${target} was stored with ${item.size} bytes, ${options.size} sent`,
        {
          subject: target,
          retryable: true,
        },
      );
    }
    return { path: target, type: "file", size: item.size, modTime: item.modified * 1000 };
  }

  async remove(path: string, options?: OpOptions): Promise<void> {
    const target = at(path);
    throwIfAborted(options?.signal);
    if (target === "")
      throw new FerryError("PERMISSION", `${this.name}: the root cannot be removed`, { subject: target });
    const encoded = [ROOT, ...target.split("/")].map(encodeURIComponent).join("/");
    const res = await this.#client.send(
      "DELETE",
      `/server/files/${encoded}`,
      callOptions(options, target, "remove"),
    );
    if (res.status === 200) {
      await res.body.dump();
      return;
    }
    // 400 "Invalid file path": no file of that name. A folder, or nothing (already removed)?
    if (res.status !== 400) return this.#client.check(res, [200], this.#client.about("remove", target));
    await res.body.dump();
    let entry: Entry;
    try {
      entry = await this.stat(target, options);
    } catch (error) {
      if (isFerryError(error, "NOT_FOUND")) return;
      throw error;
    }
    if (entry.type === "file") {
      throw new FerryError(
        "PROTOCOL",
        `${this.name}: remove ${target}: Moonraker refused to delete the file`,
        {
          subject: target,
        },
      );
    }
    const call = {
      ...callOptions(options, target, "remove"),
      query: { path: joinPath(ROOT, target), force: "false" },
    };
    try {
      await (await this.#client.call("DELETE", "/server/files/directory", [200], call)).body.dump();
    } catch (error) {
      if (error instanceof MoonrakerCallError && /not empty/i.test(error.fault.message)) {
        throw new FerryError("NOT_EMPTY", `${this.name}: remove ${target}: the folder is not empty`, {
          subject: target,
        });
      }
      throw error;
    }
  }

  /** Creates each missing folder from the top (Moonraker's mkdir needs the parent). */
  async mkdir(path: string, options?: OpOptions): Promise<void> {
    const target = at(path);
    throwIfAborted(options?.signal);
    if (target === "") return;
    checkName(this.name, target);
    for (const folder of [...ancestors(target), target]) {
      const call = { ...callOptions(options, folder, "mkdir"), json: { path: joinPath(ROOT, folder) } };
      const res = await this.#client.send("POST", "/server/files/directory", call);
      if (res.status === 200) {
        await res.body.dump();
        continue;
      }
      if (res.status !== 400) await this.#client.check(res, [200], this.#client.about("mkdir", folder));
      await res.body.dump();
      // 400 "File exists" (or another refusal): fine when a folder is there.
      const entry = await this.stat(folder, options).catch((error: unknown) => {
        if (isFerryError(error, "NOT_FOUND")) return undefined;
        throw error;
      });
      if (entry?.type === "dir") continue;
      if (entry)
        throw new FerryError("EXISTS", `${this.name}: mkdir ${folder}: a file has that name`, {
          subject: folder,
        });
      throw new FerryError("PROTOCOL", `${this.name}: mkdir ${folder}: Moonraker refused to create it`, {
        subject: folder,
      });
    }
  }

  async usage(options?: OpOptions): Promise<Usage> {
    const usage = (await this.#directory("", options, "usage")).disk_usage;
    if (!usage) return {};
    return { usedBytes: usage.used, freeBytes: usage.free, totalBytes: usage.total };
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.#client.close();
  }
}

/** Opens the storage adapter with its own client (tests pass `tuning`). */
export function openMoonrakerStorage(
  options: MoonrakerOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): MoonrakerStorage {
  return new MoonrakerStorage(createClient(options, context, tuning), { ownsClient: true });
}

export const moonrakerStorage = defineStorageAdapter<MoonrakerOptions>({
  kind: KIND,
  optionsSchema: moonrakerOptionsSchema,
  capabilities: moonrakerCapabilities,
  create: (options, context) => openMoonrakerStorage(options, context),
  cleartext: apiKeyInClear,
});
