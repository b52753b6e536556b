/**
 * An OctoPrint server's uploads folder (its `local` storage) as a StorageAdapter. Ferry's paths are
 * the names people see: OctoPrint stores a name as it sanitized it (a leading dot dropped, a
 * reserved Windows name suffixed with "_") and keeps the given one as the entry's `display`, so
 * paths are display names, found on the server by the name OctoPrint gave them. Characters OctoPrint
 * would strip (`;|&?$*<>:"\`) are refused: two names would end up as one file.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import { fieldsForm, MultipartBody } from "../../core/multipart.ts";
import { basename, dirname, joinPath, normalizePath } from "../../core/paths.ts";
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
  type Usage,
  type WriteOptions,
} from "../../storage/adapter.ts";
import { apiKeyInClear } from "../driver.ts";
import type { CallOptions } from "../http.ts";
import { entrySchema, folderSchema, listingSchema, uploadSchema, type WireEntry } from "./api-types.ts";
import { OctoPrintClient, type OctoPrintClientOptions } from "./client.ts";
import { KIND, octoprintOptionsSchema, type OctoPrintOptions } from "./options.ts";

/** Characters OctoPrint strips from names (its own list and pathvalidate's), besides control characters. */
export const OCTOPRINT_FORBIDDEN = ';|&?$*<>:"\\';

/** Tuning for tests. */
export type ClientTuning = Pick<OctoPrintClientOptions, "timeoutMs" | "connectTimeoutMs">;

/** Uploads at once: OctoPrint takes any number (Tornado streams each to disk); a Pi's SD card is the limit. */
export const MAX_UPLOADS = 4;

export const octoprintCapabilities: Readonly<Capabilities> = Object.freeze({
  read: true,
  write: true,
  list: "recursive",
  listSizes: true,
  modTimePrecisionMs: 1000,
  setModTime: false,
  hashes: ["sha1"] as const,
  rangeRead: true,
  resumableWrite: "none",
  partialWritesVisible: false,
  atomicRename: false,
  serverSideMove: false,
  maxConcurrency: MAX_UPLOADS,
  forbiddenChars: OCTOPRINT_FORBIDDEN,
  maxNameBytes: 255,
  caseInsensitive: false,
  watch: false,
  usage: true,
  removable: false,
});

const RESERVED = new Set([
  "CON",
  "PRN",
  "AUX",
  "CLOCK$",
  "NUL",
  ...["COM", "LPT"].flatMap((prefix) => Array.from({ length: 9 }, (_, i) => `${prefix}${i + 1}`)),
]);

/**
 * The name OctoPrint stores for a name Ferry allows (OctoPrint's sanitize_filename): trailing
 * spaces and dots dropped, a reserved Windows name suffixed with "_", leading dots dropped.
 */
export function serverName(name: string): string {
  let result = name.replace(/[ .]+$/, "");
  const dot = result.indexOf(".");
  const stem = dot < 0 ? result : result.slice(0, dot);
  if (RESERVED.has(stem.toUpperCase())) result = `${stem}_${result.slice(stem.length)}`;
  return result.replace(/^\.+/, "");
}

const nfc = (name: string) => name.normalize("NFC");
/** The name an entry shows (OctoPrint's `display`, else its name). */
const shown = (entry: WireEntry) => nfc(entry.display ?? entry.name);
const isFolder = (entry: WireEntry) => entry.type === "folder";
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** An on-disk path as a URL path: each name percent-encoded. */
const quote = (serverPath: string) => serverPath.split("/").map(encodeURIComponent).join("/");

function checkName(printer: string, path: string): void {
  for (const name of path.split("/")) {
    for (const ch of name) {
      const code = ch.codePointAt(0) ?? 0;
      if (OCTOPRINT_FORBIDDEN.includes(ch) || code < 0x20 || code === 0x7f) {
        throw new FerryError(
          "NAME_INVALID",
          `${printer}: "${name}" contains ${JSON.stringify(ch)}, which OctoPrint strips from names`,
          { subject: path },
        );
      }
    }
    if (Buffer.byteLength(name) > 255) {
      throw new FerryError("NAME_INVALID", `${printer}: "${name}" is longer than 255 bytes`, {
        subject: path,
      });
    }
    if (serverName(nfc(name)) === "") {
      throw new FerryError(
        "NAME_INVALID",
        `${printer}: OctoPrint cannot store a file or folder named "${name}"`,
        {
          subject: path,
        },
      );
    }
  }
}

function toEntry(path: string, wire: WireEntry): Entry {
  const entry: Entry = { path, type: isFolder(wire) ? "dir" : "file" };
  if (entry.type === "file") {
    if (wire.size !== undefined) entry.size = wire.size;
    if (wire.hash !== undefined && wire.hash !== "") entry.hashes = { sha1: wire.hash };
  }
  if (typeof wire.date === "number") entry.modTime = wire.date * 1000;
  return entry;
}

function callOptions(options: OpOptions | undefined, subject: string, operation: string): CallOptions {
  return { signal: options?.signal, subject: subject === "" ? undefined : subject, operation };
}

/** A located entry: its on-disk path ("" for the root) and what the server says of it. */
interface Located {
  server: string;
  entry: WireEntry | undefined;
}

export function createClient(
  options: OctoPrintOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): OctoPrintClient {
  return new OctoPrintClient({
    url: options.url,
    printer: context.name,
    apiKey: options.api_key,
    logger: context.logger,
    connections: MAX_UPLOADS + 2,
    ...tuning,
  });
}

export class OctoPrintStorage implements StorageAdapter {
  readonly kind = KIND;
  readonly name: string;
  readonly capabilities = octoprintCapabilities;
  readonly #client: OctoPrintClient;
  readonly #ownsClient: boolean;

  constructor(client: OctoPrintClient, options: { ownsClient: boolean }) {
    this.#client = client;
    this.name = client.printer;
    this.#ownsClient = options.ownsClient;
  }

  /** What OctoPrint says of the entry at an on-disk path (undefined: there is none). */
  entryAt(server: string, options?: OpOptions): Promise<WireEntry | undefined> {
    return this.#details(server, callOptions(options, server, "entry"));
  }

  /** The entry at an on-disk path, or undefined (404). */
  async #details(server: string, call: CallOptions, recursive = false): Promise<WireEntry | undefined> {
    const path = `/api/files/local/${quote(server)}${recursive ? "?recursive=true" : ""}`;
    const res = await this.#client.send("GET", path, call);
    if (res.status === 404) {
      await res.body.dump();
      return undefined;
    }
    const context = this.#client.context("GET", path, call);
    await this.#client.check(res, [200], context);
    return this.#client.json(res, entrySchema, context);
  }

  /** The children of an on-disk folder ("" is the root), with their subtrees when `recursive`. */
  async #children(server: string, call: CallOptions, recursive = false): Promise<WireEntry[]> {
    if (server === "") {
      const listing = await this.#client.getJson(
        `/api/files/local${recursive ? "?recursive=true" : ""}`,
        listingSchema,
        call,
      );
      return listing.files;
    }
    const folder = await this.#details(server, call, recursive);
    if (!folder || !isFolder(folder)) {
      throw new FerryError("NOT_FOUND", `${this.name}: ${call.subject ?? server} is not a folder`, {
        ...(call.subject === undefined ? {} : { subject: call.subject }),
      });
    }
    return folder.children ?? [];
  }

  /** Finds a Ferry path on the server: by the name OctoPrint would give it, else folder by folder. */
  async #locate(path: string, call: CallOptions): Promise<Located | undefined> {
    if (path === "") return { server: "", entry: undefined };
    const names = path.split("/").map(nfc);
    const guessed = names.map(serverName);
    const plainFolders = names.slice(0, -1).every((name, i) => guessed[i] === name);
    const hit = await this.#details(guessed.join("/"), call);
    const last = names.at(-1) ?? "";
    if (hit && shown(hit) === last && plainFolders) return { server: hit.path, entry: hit };
    // Nothing under the guessed name: definite for ASCII names, which have one normal form.
    if (!hit && plainFolders && names.every((name) => ASCII.test(name))) return undefined;
    let at = "";
    let found: WireEntry | undefined;
    for (const name of names) {
      if (found && !isFolder(found)) return undefined;
      found = (await this.#children(at, call)).find((child) => shown(child) === name);
      if (!found) return undefined;
      at = found.path;
    }
    return { server: at, entry: found };
  }

  async #mustLocate(path: string, call: CallOptions): Promise<Located & { entry: WireEntry }> {
    const located = await this.#locate(path, call);
    if (!located?.entry)
      throw new FerryError("NOT_FOUND", `${this.name}: ${path} does not exist`, { subject: path });
    return { server: located.server, entry: located.entry };
  }

  async *list(dir: string, options?: ListOptions): AsyncIterable<Entry> {
    const at = normalizePath(dir);
    const call = callOptions(options, at, "list");
    let server = "";
    if (at !== "") {
      const located = await this.#mustLocate(at, call);
      if (!isFolder(located.entry)) {
        throw new FerryError("NOT_FOUND", `${this.name}: ${at} is a file, not a folder`, { subject: at });
      }
      server = located.server;
    }
    const recursive = options?.recursive === true;
    const walk = function* (base: string, entries: readonly WireEntry[]): Generator<Entry> {
      for (const child of entries) {
        const path = joinPath(base, shown(child));
        yield toEntry(path, child);
        if (recursive && isFolder(child)) yield* walk(path, child.children ?? []);
      }
    };
    yield* walk(at, await this.#children(server, call, recursive));
  }

  async stat(path: string, options?: OpOptions): Promise<Entry> {
    const at = normalizePath(path);
    throwIfAborted(options?.signal);
    if (at === "") return { path: "", type: "dir" };
    const { entry } = await this.#mustLocate(at, callOptions(options, at, "stat"));
    return toEntry(at, entry);
  }

  async read(path: string, options?: ReadOptions): Promise<Readable> {
    const at = normalizePath(path);
    const call = callOptions(options, at, "read");
    const { server, entry } = await this.#mustLocate(at, call);
    if (isFolder(entry))
      throw new FerryError("NOT_FOUND", `${this.name}: ${at} is a folder`, { subject: at });
    const offset = options?.offset ?? 0;
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const res = await this.#client.send("GET", `/downloads/files/local/${quote(server)}`, {
      ...call,
      headers,
    });
    if (offset > 0 && res.status === 416 && offset >= (entry.size ?? 0)) {
      await res.body.dump();
      return Readable.from([]);
    }
    await this.#client.check(res, offset > 0 ? [206] : [200], this.#client.context("GET", server, call));
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
    const call = callOptions(options, at, "upload");
    const folder = dirname(at) === "" ? "" : await this.#ensureFolder(dirname(at), call);
    const name = nfc(basename(at));
    const target = joinPath(folder, serverName(name));
    const existing = await this.#details(target, call);
    if (existing && (isFolder(existing) || shown(existing) !== name)) {
      throw new FerryError(
        "EXISTS",
        `${this.name}: upload ${at}: OctoPrint keeps ${isFolder(existing) ? "a folder" : `"${shown(existing)}"`} under the same name`,
        { subject: at },
      );
    }
    const hash = createHash("sha1");
    async function* hashed(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        yield chunk;
      }
    }
    const form = new MultipartBody(folder === "" ? [] : [["path", folder]], {
      field: "file",
      filename: name,
      size: options.size,
    });
    const res = await this.#client.upload("/api/files/local", form, hashed(), call);
    const context = this.#client.context("POST", "/api/files/local", call);
    await this.#client.check(res, [200, 201], context);
    const answer = await this.#client.json(res, uploadSchema, context);
    const stored = answer.files?.local.path ?? answer.file?.path ?? target;
    const entry = await this.#details(stored, call);
    const sha1 = hash.digest("hex");
    if (
      !entry ||
      isFolder(entry) ||
      entry.size !== options.size ||
      (entry.hash !== undefined && entry.hash !== sha1)
    ) {
      throw new FerryError(
        "PROTOCOL",
        `${this.name}: ${at} was stored with ${entry?.size ?? "no"} bytes${entry?.hash !== undefined && entry.hash !== sha1 ? " and another SHA-1" : ""}, ${options.size} sent`,
        { subject: at, retryable: true },
      );
    }
    return toEntry(at, entry);
  }

  /** Makes a folder and its parents (each with its display name); returns its on-disk path. */
  async #ensureFolder(path: string, call: CallOptions): Promise<string> {
    let at = "";
    let shownPath = "";
    for (const raw of path.split("/")) {
      const name = nfc(raw);
      shownPath = joinPath(shownPath, name);
      let found = await this.#details(joinPath(at, serverName(name)), call);
      if (found && shown(found) !== name) found = undefined;
      if (!found && !ASCII.test(name)) {
        found = (await this.#children(at, call)).find((child) => shown(child) === name);
      }
      if (found) {
        if (!isFolder(found)) {
          throw new FerryError("EXISTS", `${this.name}: ${shownPath} is a file, not a folder`, {
            subject: shownPath,
          });
        }
        at = found.path;
        continue;
      }
      at = await this.#createFolder(at, name, shownPath, call);
    }
    return at;
  }

  async #createFolder(parent: string, name: string, shownPath: string, call: CallOptions): Promise<string> {
    const occupied = await this.#details(joinPath(parent, serverName(name)), call);
    // Another write of this adapter made it meanwhile.
    if (occupied && isFolder(occupied) && shown(occupied) === name) return occupied.path;
    if (occupied) {
      throw new FerryError(
        "EXISTS",
        `${this.name}: mkdir ${shownPath}: OctoPrint keeps ${isFolder(occupied) ? "a folder" : "a file"} "${shown(occupied)}" under the same name`,
        { subject: shownPath },
      );
    }
    const form = fieldsForm(
      parent === ""
        ? [["foldername", name]]
        : [
            ["foldername", name],
            ["path", parent],
          ],
    );
    const context = { printer: this.name, operation: "mkdir", subject: shownPath };
    const res = await this.#client.send(
      "POST",
      "/api/files/local",
      { ...call, headers: { "Content-Type": form.contentType } },
      form.body,
    );
    // 409 "Can't create folder, please try another name": OctoPrint takes it for a print file's name.
    await this.#client.check(res, [200, 201], context, res.status === 409 ? "NAME_INVALID" : undefined);
    return (await this.#client.json(res, folderSchema, context)).folder.path;
  }

  async remove(path: string, options?: OpOptions): Promise<void> {
    const at = normalizePath(path);
    if (at === "")
      throw new FerryError("PERMISSION", `${this.name}: the storage root cannot be removed`, { subject: at });
    const call = callOptions(options, at, "remove");
    throwIfAborted(options?.signal);
    const located = await this.#locate(at, call);
    if (!located?.entry) return;
    if (isFolder(located.entry)) {
      // OctoPrint deletes a folder with everything in it; Ferry removes empty folders only.
      const children = await this.#children(located.server, call);
      if (children.length > 0) {
        throw new FerryError("NOT_EMPTY", `${this.name}: remove ${at}: the folder is not empty`, {
          subject: at,
        });
      }
    }
    const res = await this.#client.send("DELETE", `/api/files/local/${quote(located.server)}`, call);
    if (res.status === 404 || res.status === 204 || res.status === 200) {
      await res.body.dump();
      return;
    }
    // 409: the file being printed (or a folder holding it).
    await this.#client.check(res, [], this.#client.context("DELETE", located.server, call));
  }

  async mkdir(path: string, options?: OpOptions): Promise<void> {
    const at = normalizePath(path);
    throwIfAborted(options?.signal);
    if (at === "") return;
    checkName(this.name, at);
    await this.#ensureFolder(at, callOptions(options, at, "mkdir"));
  }

  async usage(options?: OpOptions): Promise<Usage> {
    const listing = await this.#client.getJson(
      "/api/files/local",
      listingSchema,
      callOptions(options, "", "usage"),
    );
    const usage: Usage = {};
    if (listing.free !== undefined) usage.freeBytes = listing.free;
    if (listing.total !== undefined) usage.totalBytes = listing.total;
    if (listing.free !== undefined && listing.total !== undefined) {
      usage.usedBytes = Math.max(0, listing.total - listing.free);
    }
    return usage;
  }

  async hash(path: string, kind: HashKind, options?: OpOptions): Promise<string> {
    if (kind !== "sha1")
      throw new FerryError("UNSUPPORTED", `${this.name}: OctoPrint keeps SHA-1 hashes only`);
    const entry = await this.stat(path, options);
    const value = entry.hashes?.sha1;
    if (entry.type !== "file" || value === undefined) {
      throw new FerryError("PROTOCOL", `${this.name}: OctoPrint gave no hash for ${path}`, { subject: path });
    }
    return value;
  }

  /** The on-disk path OctoPrint keeps a Ferry path under (NOT_FOUND when absent). */
  async serverPathOf(path: string, options?: OpOptions): Promise<string> {
    const at = normalizePath(path);
    return (await this.#mustLocate(at, callOptions(options, at, "locate"))).server;
  }

  /** The Ferry path (display names) of an on-disk path OctoPrint reports, e.g. a job's file. */
  async displayPath(server: string, options?: OpOptions): Promise<string | undefined> {
    const call = callOptions(options, server, "job file");
    const parts = server.split("/").filter((part) => part !== "");
    const shownNames: string[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const entry = await this.#details(parts.slice(0, i).join("/"), call);
      if (!entry) return undefined;
      shownNames.push(shown(entry));
    }
    return shownNames.join("/");
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.#client.close();
  }
}

export function openOctoPrintStorage(
  options: OctoPrintOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): OctoPrintStorage {
  return new OctoPrintStorage(createClient(options, context, tuning), { ownsClient: true });
}

export const octoprintStorage = defineStorageAdapter<OctoPrintOptions>({
  kind: KIND,
  optionsSchema: octoprintOptionsSchema,
  capabilities: octoprintCapabilities,
  create: (options, context) => openOctoPrintStorage(options, context),
  cleartext: apiKeyInClear,
});
