/**
 * The server's tree as one adapter instance sees it: PROPFIND lookups (with the NFC fallback for
 * non-ASCII names), the folders it knows exist, MKCOL, PUT, DELETE, MOVE, and whether the server
 * keeps ranged PUTs. Paths here are checked Ferry paths; the adapter validates its callers' input.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { isFerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { basename, dirname, isWithin, joinPath, pathKey } from "../../core/paths.ts";
import type { Entry } from "../adapter.ts";
import { ByteReader } from "./bytes.ts";
import type { DavClient, DavResponse } from "./client.ts";
import { abortable, davError, errorDetail, networkError, statusError, type ErrorContext } from "./errors.ts";
import { hrefSegments, parseMultistatus, PROPFIND_QUERY } from "./propfind.ts";
import { tempPathIn, type UploadHost } from "./upload.ts";

// eslint-disable-next-line no-control-regex
export const isAscii = (text: string) => /^[\x00-\x7f]*$/.test(text);
export const ok = (status: number) => status >= 200 && status < 300;

export async function dump(res: DavResponse): Promise<void> {
  await res.body.dump().catch(() => undefined);
}

/** A resource's own entry and its children (paths below it as asked for). */
export interface Listing {
  self: Entry;
  children: Entry[];
}

type Signal = AbortSignal | undefined;

export class Remote implements UploadHost {
  readonly name: string;
  readonly chunkBytes: number;
  readonly client: DavClient;
  readonly #logger: Logger;
  readonly #base: string[];
  /** Folders known to exist; the root always. */
  readonly #folders = new Set<string>([""]);
  readonly #making = new Map<string, Promise<void>>();
  #ranged: Promise<boolean> | undefined;

  constructor(client: DavClient, logger: Logger, chunkBytes: number) {
    this.client = client;
    this.name = client.device;
    this.#logger = logger;
    this.chunkBytes = chunkBytes;
    this.#base = hrefSegments(client.basePath);
  }

  context(operation: string, path: string): ErrorContext {
    return { device: this.name, operation, path };
  }

  /** Throws the FerryError for an unexpected answer, with the server's own words. */
  async fail(
    res: DavResponse,
    context: ErrorContext,
    code?: Parameters<typeof statusError>[3],
  ): Promise<never> {
    const detail = errorDetail(await res.body.text().catch(() => ""));
    throw statusError(res.status, context, detail, code);
  }

  /** PROPFIND of `path`: itself and (Depth 1) its children, or undefined when nothing is there. */
  async propfind(
    path: string,
    depth: "0" | "1",
    signal: Signal,
    operation: string,
  ): Promise<Listing | undefined> {
    const context = this.context(operation, path);
    const res = await this.client.send({
      method: "PROPFIND",
      path,
      headers: { Depth: depth },
      body: PROPFIND_QUERY,
      signal,
      operation,
    });
    if (res.status === 404) {
      await dump(res);
      return undefined;
    }
    if (res.status === 400 && path.includes("/")) {
      // Apache: 400 for a path below a file. Nothing can be there.
      const parent = await this.one(dirname(path), signal, operation);
      if (parent?.type !== "dir") {
        await dump(res);
        return undefined;
      }
    }
    if (res.status !== 207) return this.fail(res, context);
    let xml: string;
    try {
      xml = await res.body.text();
    } catch (error) {
      throw networkError(error, context, signal);
    }
    const entries = parseMultistatus(xml, this.#base, context);
    const key = pathKey(path);
    const self = entries.find((e) => pathKey(e.path) === key) ?? entries[0];
    if (!self) throw davError("PROTOCOL", context, "the server's Multi-Status names nothing");
    const children = entries
      .filter((e) => e !== self)
      .map((e) => ({ ...e, path: joinPath(path, basename(e.path)) }));
    return { self: { ...self, path }, children };
  }

  async one(path: string, signal: Signal, operation: string): Promise<Entry | undefined> {
    return (await this.propfind(path, "0", signal, operation))?.self;
  }

  /**
   * The path as stored: each non-ASCII name not found as given is matched in NFC against its
   * folder's entries; names past the first that matches nothing are kept as given.
   */
  async matchNfc(path: string, signal: Signal, operation: string): Promise<string> {
    const parts = path.split("/");
    let found = "";
    for (const [i, part] of parts.entries()) {
      if (isAscii(part)) {
        found = joinPath(found, part);
        continue;
      }
      const key = pathKey(part);
      const listing = await this.propfind(found, "1", signal, operation);
      const match = listing?.children.find((e) => pathKey(basename(e.path)) === key);
      if (!match) return joinPath(found, ...parts.slice(i));
      found = match.path;
    }
    return found;
  }

  /** PROPFIND by the path as given, then (non-ASCII names only) by its twin in another normalization. */
  async find(
    path: string,
    depth: "0" | "1",
    signal: Signal,
    operation: string,
  ): Promise<Listing | undefined> {
    const direct = await this.propfind(path, depth, signal, operation);
    if (direct || isAscii(path)) return direct;
    const located = await this.matchNfc(path, signal, operation);
    return located === path ? undefined : this.propfind(located, depth, signal, operation);
  }

  /** Where to write `path`: where a file of that name (in any normalization) is, else as given. */
  async locate(path: string, signal: Signal, operation: string): Promise<string> {
    if (isAscii(path)) return path;
    return (
      (await this.find(path, "0", signal, operation))?.self.path ?? this.matchNfc(path, signal, operation)
    );
  }

  remember(entries: Iterable<Entry>): void {
    for (const entry of entries) if (entry.type === "dir") this.#folders.add(entry.path);
  }

  forget(path: string): void {
    for (const folder of this.#folders)
      if (folder !== "" && isWithin(folder, path)) this.#folders.delete(folder);
  }

  /** Makes `dir` and its missing parents, once per instance and folder (callers share the work). */
  async ensureFolder(dir: string, signal: Signal): Promise<void> {
    if (this.#folders.has(dir)) return;
    let making = this.#making.get(dir);
    if (!making) {
      making = this.#makeFolder(dir).finally(() => this.#making.delete(dir));
      this.#making.set(dir, making);
    }
    await abortable(making, signal, this.context("mkdir", dir));
  }

  async #makeFolder(dir: string): Promise<void> {
    const context = this.context("mkdir", dir);
    const mkcol = () => this.client.send({ method: "MKCOL", path: dir, dir: true, operation: "mkdir" });
    let res = await mkcol();
    if (res.status === 409 && dir !== "") {
      // A parent is missing: make it, then this one (bottom-up: one request when the parent exists).
      await dump(res);
      await this.ensureFolder(dirname(dir), undefined);
      res = await mkcol();
    }
    if (ok(res.status)) {
      await dump(res);
      this.#folders.add(dir);
      return;
    }
    if (res.status === 405 || res.status === 400) {
      // Something has that name already (Apache: 400 for a file, 405 for a folder; nginx: 405).
      await dump(res);
      const entry = await this.one(dir, undefined, "mkdir");
      if (entry?.type === "dir") {
        this.#folders.add(dir);
        return;
      }
      if (entry) throw davError("EXISTS", context, "a file has that name");
      throw statusError(res.status, context);
    }
    return this.fail(res, context);
  }

  /** PUT of `length` bytes from `reader`; at `at.start` by ranged PUT when given. */
  async put(
    path: string,
    reader: ByteReader,
    length: number,
    at: { start?: number; last: boolean },
    signal: Signal,
  ): Promise<void> {
    const context = this.context("upload", path);
    const range =
      at.start === undefined ? {} : { "Content-Range": `bytes ${at.start}-${at.start + length - 1}/*` };
    const res = await this.client.upload(
      { path, headers: range, signal, operation: "upload" },
      reader.take(length, at.last),
      length,
      () => reader.failure,
    );
    if (ok(res.status)) return dump(res);
    if (res.status === 409 || res.status === 405) {
      await dump(res);
      if ((await this.one(path, signal, "upload"))?.type === "dir") {
        throw davError("EXISTS", context, "a folder has that name");
      }
      // The folder vanished behind our back: forget it, so that the next attempt makes it again.
      this.forget(dirname(path));
      throw davError("TRANSIENT", context, `its folder is gone (HTTP ${res.status})`, true);
    }
    return this.fail(res, context);
  }

  async fileSize(path: string, signal: Signal): Promise<number | undefined> {
    const entry = await this.one(path, signal, "upload");
    return entry?.type === "file" ? entry.size : undefined;
  }

  /** DELETE; succeeds when already absent. */
  async delete(path: string, dir: boolean, signal: Signal, operation: string): Promise<void> {
    const res = await this.client.send({ method: "DELETE", path, dir, signal, operation });
    if (ok(res.status) || res.status === 404) return dump(res);
    return this.fail(res, this.context(operation, path));
  }

  deleteFile(path: string, signal?: AbortSignal): Promise<void> {
    return this.delete(path, false, signal, "remove");
  }

  moveFile(from: string, to: string, signal: Signal): Promise<void> {
    return this.move(from, to, signal, false);
  }

  /** MOVE with Overwrite: T. `retry`: on 400/409, once more as a folder or after remaking the target's folder. */
  async move(from: string, to: string, signal: Signal, retry: boolean, dir = false): Promise<void> {
    const context = this.context("move", from);
    const res = await this.client.send({
      method: "MOVE",
      path: from,
      dir,
      headers: { Destination: this.client.url(to, dir), Overwrite: "T" },
      signal,
      operation: "move",
    });
    if (ok(res.status)) {
      await dump(res);
      if (dir) {
        this.forget(from);
        this.#folders.add(to);
      }
      return;
    }
    if ((res.status === 409 || res.status === 400) && retry) {
      // nginx moves folders only with trailing slashes (400, 409); else the target's folder vanished.
      await dump(res);
      const entry = await this.one(from, signal, "move");
      if (!entry) throw davError("NOT_FOUND", context, "no such file or folder");
      if (entry.type === "dir") return this.move(from, to, signal, false, true);
      this.forget(dirname(to));
      await this.ensureFolder(dirname(to), signal);
      return this.move(from, to, signal, false);
    }
    return this.fail(res, context);
  }

  /** Whether the server keeps ranged PUTs: probed once (in `folder`), remembered for the instance. */
  rangedPut(folder: string, signal: Signal): Promise<boolean> {
    this.#ranged ??= this.#probeRangedPut(folder).then(
      (supported) => {
        this.#logger.info({ device: this.name, supported }, "WebDAV ranged PUT (resumable uploads)");
        return supported;
      },
      (error: unknown) => {
        this.#ranged = undefined;
        throw error;
      },
    );
    return abortable(this.#ranged, signal, this.context("probe", folder));
  }

  /** Writes 16 bytes, then 16 more at offset 16 by ranged PUT, and checks all 32 byte for byte. */
  async #probeRangedPut(folder: string): Promise<boolean> {
    const scratch = tempPathIn(folder);
    const data = randomBytes(32);
    const reader = (bytes: Buffer) =>
      new ByteReader(Readable.from([bytes]), 0, () =>
        davError("PROTOCOL", this.context("probe", scratch), "probe data"),
      );
    try {
      await this.put(scratch, reader(data.subarray(0, 16)), 16, { last: true }, undefined);
      try {
        await this.put(scratch, reader(data.subarray(16)), 16, { start: 16, last: true }, undefined);
      } catch (error) {
        // Refusals (nginx 501; 400, 405, 416 elsewhere) say no; outages and a full disk are no answer.
        const refused = ["UNSUPPORTED", "PROTOCOL", "EXISTS", "PERMISSION", "NOT_FOUND"];
        if (isFerryError(error) && refused.includes(error.code)) return false;
        if (isFerryError(error, "TRANSIENT") && error.cause === undefined) return false;
        throw error;
      }
      const res = await this.client.send({ method: "GET", path: scratch, operation: "probe" });
      const held = Buffer.from(await res.body.arrayBuffer());
      return ok(res.status) && held.equals(data);
    } finally {
      await this.delete(scratch, false, undefined, "probe").catch(() => undefined);
    }
  }
}
