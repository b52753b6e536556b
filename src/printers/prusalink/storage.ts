/**
 * A PrusaLink printer's files (its USB stick on the MK4, /local on the MK3) as a StorageAdapter.
 * Paths are long names relative to the storage root; the printer also resolves 8.3 short names
 * and compares names case-insensitively, as FAT does.
 */
import type { Readable } from "node:stream";
import { FerryError, isFerryError, throwIfAborted } from "../../core/errors.ts";
import { joinPath, normalizePath } from "../../core/paths.ts";
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
import type { CallOptions } from "../http.ts";
import { fileInfoSchema, storageListSchema, type WireFileEntry, type WireStorage } from "./api-types.ts";
import { PrusaLinkClient, type PrusaLinkClientOptions } from "./client.ts";
import { KIND, prusalinkOptionsSchema, type PrusaLinkOptions } from "./options.ts";
import { errorDetail, statusError } from "./errors.ts";

/** Characters FAT (and so PrusaLink) refuses in names; control characters are refused too. */
export const FAT_FORBIDDEN = '"*:<>?\\|';

/** Tuning for tests: an injected clock and nonce refresh bound. */
export type ClientTuning = Pick<
  PrusaLinkClientOptions,
  "clock" | "nonceRefreshMs" | "timeoutMs" | "connectTimeoutMs"
>;

export const prusalinkCapabilities: Readonly<Capabilities> = Object.freeze({
  read: true,
  write: true,
  list: "flat",
  listSizes: false,
  modTimePrecisionMs: 1000,
  setModTime: false,
  hashes: [],
  rangeRead: false,
  resumableWrite: "none",
  partialWritesVisible: false,
  atomicRename: false,
  serverSideMove: false,
  maxConcurrency: 1,
  forbiddenChars: FAT_FORBIDDEN,
  maxNameBytes: 255,
  // The firmware answers any other upload 415 "Not a GCODE" (gcode_upload.cpp, filename_is_gcode).
  fileTypes: [".gcode", ".bgcode", ".gco", ".g"],
  caseInsensitive: true,
  watch: false,
  usage: true,
  removable: false,
});

export function createClient(
  options: PrusaLinkOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): PrusaLinkClient {
  return new PrusaLinkClient({
    url: options.url,
    printer: context.name,
    logger: context.logger,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.api_key === undefined ? {} : { apiKey: options.api_key }),
    ...tuning,
  });
}

const callOptions = (options: OpOptions | undefined, subject: string, operation: string): CallOptions => ({
  signal: options?.signal,
  subject: subject === "" ? undefined : subject,
  operation,
});

function checkName(printer: string, path: string): void {
  for (const name of path.split("/")) {
    for (const ch of name) {
      if (FAT_FORBIDDEN.includes(ch) || ch.charCodeAt(0) < 0x20) {
        throw new FerryError(
          "NAME_INVALID",
          `${printer}: "${name}" contains ${JSON.stringify(ch)}, which the printer's FAT storage refuses`,
          {
            subject: path,
          },
        );
      }
    }
    if (Buffer.byteLength(name) > 255) {
      throw new FerryError("NAME_INVALID", `${printer}: "${name}" is longer than 255 bytes`, {
        subject: path,
      });
    }
  }
}

function toEntry(path: string, wire: WireFileEntry, withSize: boolean): Entry {
  const entry: Entry = { path, type: wire.type === "FOLDER" ? "dir" : "file" };
  if (withSize && entry.type === "file" && wire.size !== undefined) entry.size = wire.size;
  if (wire.m_timestamp !== undefined) entry.modTime = wire.m_timestamp * 1000;
  return entry;
}

export class PrusaLinkStorage implements StorageAdapter {
  readonly kind = KIND;
  readonly name: string;
  readonly capabilities = prusalinkCapabilities;
  readonly #client: PrusaLinkClient;
  readonly #ownsClient: boolean;
  readonly #storageOption: string | undefined;
  #storage: string | undefined;

  constructor(client: PrusaLinkClient, options: { storage?: string | undefined; ownsClient: boolean }) {
    this.#client = client;
    this.name = client.printer;
    this.#ownsClient = options.ownsClient;
    this.#storageOption = options.storage;
  }

  async #storages(options?: OpOptions): Promise<WireStorage[]> {
    const list = await this.#client.getJson(
      "/api/v1/storage",
      storageListSchema,
      callOptions(options, "", "storage list"),
    );
    return list?.storage_list ?? [];
  }

  /** The storage this adapter works on ("usb"), asked of the printer once unless configured. */
  async storageName(options?: OpOptions): Promise<string> {
    if (this.#storageOption !== undefined) return this.#storageOption;
    if (this.#storage !== undefined) return this.#storage;
    const storages = await this.#storages(options);
    const usable = storages.find((s) => s.available && s.read_only !== true);
    if (!usable)
      throw new FerryError(
        "NOT_FOUND",
        `${this.name}: no writable storage is available (is a USB stick inserted?)`,
      );
    this.#storage = usable.path.replace(/^\/+/, "").toLowerCase();
    return this.#storage;
  }

  /** API path of a Ferry path: /api/v1/files/usb/a/b.gcode (each name percent-encoded). */
  async apiPath(path: string, options?: OpOptions, folder = false): Promise<string> {
    const storage = await this.storageName(options);
    const names = normalizePath(path)
      .split("/")
      .filter((n) => n !== "");
    const encoded = names.map(encodeURIComponent).join("/");
    return `/api/v1/files/${encodeURIComponent(storage)}/${encoded}${folder && encoded !== "" ? "/" : ""}`;
  }

  async *list(dir: string, options?: ListOptions): AsyncIterable<Entry> {
    const at = normalizePath(dir);
    const info = await this.#client.getJson(
      await this.apiPath(at, options),
      fileInfoSchema,
      callOptions(options, at, "list"),
    );
    if (!info) throw new FerryError("PROTOCOL", `${this.name}: list ${at}: empty reply`, { subject: at });
    if (info.type !== "FOLDER")
      throw new FerryError("NOT_FOUND", `${this.name}: ${at} is a file, not a folder`, { subject: at });
    for (const child of info.children ?? []) {
      yield toEntry(joinPath(at, child.display_name ?? child.name), child, true);
    }
  }

  async stat(path: string, options?: OpOptions): Promise<Entry> {
    const at = normalizePath(path);
    if (at === "") return { path: "", type: "dir" };
    const info = await this.#client.getJson(
      await this.apiPath(at, options),
      fileInfoSchema,
      callOptions(options, at, "stat"),
    );
    if (!info) throw new FerryError("PROTOCOL", `${this.name}: stat ${at}: empty reply`, { subject: at });
    return toEntry(at, info, true);
  }

  async read(path: string, options?: ReadOptions): Promise<Readable> {
    const at = normalizePath(path);
    if ((options?.offset ?? 0) > 0) {
      throw new FerryError("UNSUPPORTED", `${this.name}: PrusaLink cannot read from an offset`, {
        subject: at,
      });
    }
    const call = callOptions(options, at, "read");
    const info = await this.#client.getJson(await this.apiPath(at, options), fileInfoSchema, call);
    if (info?.type === "FOLDER")
      throw new FerryError("NOT_FOUND", `${this.name}: ${at} is a folder`, { subject: at });
    const storage = await this.storageName(options);
    const download =
      info?.refs?.download ??
      `/api/files/${encodeURIComponent(storage)}/${at.split("/").map(encodeURIComponent).join("/")}/raw`;
    const res = await this.#client.call("GET", download, [200], call);
    return res.body;
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const at = normalizePath(path);
    throwIfAborted(options.signal);
    if (at === "")
      throw new FerryError("NAME_INVALID", `${this.name}: cannot write to the storage root`, { subject: at });
    checkName(this.name, at);
    const call = {
      ...callOptions(options, at, "upload"),
      headers: { Overwrite: "?1", "Create-Folder": "?1", "Print-After-Upload": "?0" },
    };
    const res = await this.#client.upload(
      await this.apiPath(at, options),
      source,
      options.size,
      [200, 201, 204],
      call,
    );
    await res.body.dump();
    const stored = await this.stat(at, options);
    if (stored.type !== "file" || stored.size !== options.size) {
      throw new FerryError(
        "PROTOCOL",
        `${this.name}: ${at} was stored with ${stored.size ?? "no"} bytes, ${options.size} sent`,
        {
          subject: at,
          retryable: true,
        },
      );
    }
    return stored;
  }

  async remove(path: string, options?: OpOptions): Promise<void> {
    const at = normalizePath(path);
    if (at === "")
      throw new FerryError("PERMISSION", `${this.name}: the storage root cannot be removed`, { subject: at });
    const call = callOptions(options, at, "remove");
    const res = await this.#client.send("DELETE", await this.apiPath(at, options), call);
    if (res.status === 404 || res.status === 200 || res.status === 204) {
      await res.body.dump();
      return;
    }
    const context = { printer: this.name, operation: "remove", subject: at };
    if (res.status !== 409) return this.#client.check(res, [], context);
    // Either a folder with content or the file being printed: ask which.
    const detail = errorDetail(await res.body.text().catch(() => ""));
    if (await this.#isNonEmptyFolder(at, options)) {
      throw new FerryError("NOT_EMPTY", `${this.name}: remove ${at}: the folder is not empty`, {
        subject: at,
      });
    }
    throw statusError(409, context, detail);
  }

  async #isNonEmptyFolder(path: string, options?: OpOptions): Promise<boolean> {
    try {
      const entry = await this.stat(path, options);
      if (entry.type !== "dir") return false;
      for await (const _ of this.list(path, options)) return true;
      return false;
    } catch {
      return false;
    }
  }

  async mkdir(path: string, options?: OpOptions): Promise<void> {
    const at = normalizePath(path);
    if (at === "") return;
    checkName(this.name, at);
    const call = {
      ...callOptions(options, at, "mkdir"),
      headers: { "Create-Folder": "?1", "Content-Length": "0" },
    };
    const res = await this.#client.send("PUT", await this.apiPath(at, options, true), call);
    await res.body.dump().catch(() => undefined);
    if (res.status === 200 || res.status === 201 || res.status === 204) return;
    if (res.status === 409) {
      const entry = await this.stat(at, options).catch((error: unknown) => {
        if (isFerryError(error, "NOT_FOUND")) return undefined;
        throw error;
      });
      if (entry?.type === "dir") return;
      if (entry)
        throw new FerryError("EXISTS", `${this.name}: mkdir ${at}: a file has that name`, { subject: at });
    }
    await this.#client.check(res, [201], { printer: this.name, operation: "mkdir", subject: at });
  }

  async usage(options?: OpOptions): Promise<Usage> {
    const name = await this.storageName(options);
    const storage = (await this.#storages(options)).find(
      (s) => s.path.replace(/^\/+/, "").toLowerCase() === name,
    );
    if (!storage) throw new FerryError("NOT_FOUND", `${this.name}: storage /${name} is gone`);
    const usage: Usage = {};
    if (storage.free_space !== undefined) usage.freeBytes = storage.free_space;
    if (storage.total_space !== undefined) usage.totalBytes = storage.total_space;
    if (storage.free_space !== undefined && storage.total_space !== undefined) {
      usage.usedBytes = Math.max(0, storage.total_space - storage.free_space);
    }
    return usage;
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.#client.close();
  }
}

/** Opens the storage adapter with its own client (tests pass `tuning`). */
export function openPrusaLinkStorage(
  options: PrusaLinkOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): PrusaLinkStorage {
  return new PrusaLinkStorage(createClient(options, context, tuning), {
    storage: options.storage,
    ownsClient: true,
  });
}

export const prusalinkStorage = defineStorageAdapter<PrusaLinkOptions>({
  kind: KIND,
  optionsSchema: prusalinkOptionsSchema,
  capabilities: prusalinkCapabilities,
  create: (options, context) => openPrusaLinkStorage(options, context),
});
