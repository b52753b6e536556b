/**
 * The StorageAdapter contract: one shape for every place Ferry reads files from or writes them to.
 * Core code looks at `capabilities`, never at `kind`. Optional methods exist if and only if their
 * capability says so (checked by `defineStorageAdapter` and by the conformance suite).
 */
import type { Readable } from "node:stream";
import type { z } from "zod";
import type { Logger } from "../core/logger.ts";
import { FerryError } from "../core/errors.ts";

export type HashKind = "md5" | "sha1" | "sha256" | "crc32";

export interface Capabilities {
  read: boolean;
  write: boolean;
  /** none: cannot list (write-only forms); flat: one folder per call; recursive: a whole tree per call. */
  list: "none" | "flat" | "recursive";
  /** Whether listings carry file sizes (PrusaLink's folder listings do not; `stat` does). */
  listSizes: boolean;
  /** Granularity of stored modification times, or null when the target keeps none of its own. */
  modTimePrecisionMs: number | null;
  /** Whether `write`'s modTime (or `setModTime`) is kept; false means the target stamps its own time. */
  setModTime: boolean;
  hashes: readonly HashKind[];
  rangeRead: boolean;
  resumableWrite: "none" | "offset" | "append" | "multipart";
  /** True when an interrupted `write` can leave a partial file (or a clobbered old one) under the final name. */
  partialWritesVisible: boolean;
  atomicRename: boolean;
  serverSideMove: boolean;
  /** Transfers this target accepts at once (PrusaLink: 1). */
  maxConcurrency: number;
  /** Characters a name may not contain on this target. */
  forbiddenChars: string;
  /** Longest name component in UTF-8 bytes, or null if unbounded. */
  maxNameBytes: number | null;
  /**
   * The only file name endings this target takes, lower-case with their dot (a printer takes
   * G-code: [".gcode", ".bgcode", ".gco", ".g"]); absent: any file.
   */
  fileTypes?: readonly string[];
  caseInsensitive: boolean;
  watch: boolean;
  usage: boolean;
  removable: boolean;
}

export interface Entry {
  /** Relative to the adapter's root; see core/paths.ts. */
  path: string;
  type: "file" | "dir";
  /** Bytes; absent for folders and where the listing does not carry sizes. */
  size?: number;
  /** Milliseconds since the epoch. */
  modTime?: number;
  hashes?: Partial<Record<HashKind, string>>;
}

export interface OpOptions {
  signal?: AbortSignal;
}

export interface ListOptions extends OpOptions {
  /** Only for adapters whose `list` capability is "recursive". */
  recursive?: boolean;
}

export interface ReadOptions extends OpOptions {
  /** Start at this byte (needs `rangeRead` when > 0). */
  offset?: number;
}

export interface WriteOptions extends OpOptions {
  /** Exact byte count of the stream; a stream that ends short or long fails the write. */
  size: number;
  /** Wanted modification time (ms); kept where `setModTime` is true. */
  modTime?: number;
}

/** What a resumable upload keeps between attempts: JSON, saved in the task checkpoint. */
export type UploadToken = { readonly [key: string]: unknown };

export interface UploadOptions extends WriteOptions {
  /**
   * The token of an earlier upload of this path. When it still fits (same size, the partial data
   * still there) the upload goes on from what the target holds; otherwise it starts over at 0.
   */
  resume?: UploadToken;
}

export interface FinishOptions extends OpOptions {
  /** Called when more bytes are stored for good, with the token to keep for a later resume. */
  onStored?: (stored: { bytes: number; token: UploadToken }) => void;
}

/**
 * An upload that survives a crash, an unplug or an outage: `openUpload` says how much of it the
 * target already holds; the caller sends the rest with `finish`, which puts the file under its name.
 * Until then nothing shows under the final name (an old file there keeps its content).
 */
export interface Upload {
  /** Bytes the target already holds for this upload: send the source from this byte on. */
  readonly offset: number;
  /** Keep it (the task checkpoint) before sending: a later `openUpload` resumes with it. */
  readonly token: UploadToken;
  /** Sends bytes `offset`..`size` of the file, then stores it under its name. */
  finish(rest: Readable | AsyncIterable<Uint8Array>, options?: FinishOptions): Promise<Entry>;
  /** Throws away what this upload stored so far. */
  abort(options?: OpOptions): Promise<void>;
}

export interface Usage {
  usedBytes?: number;
  freeBytes?: number;
  totalBytes?: number;
}

export interface StorageAdapter {
  readonly kind: string;
  /** Device name (or folder) this instance serves, used in messages. */
  readonly name: string;
  readonly capabilities: Readonly<Capabilities>;
  /** Children of `dir` ("" is the root); NOT_FOUND when `dir` does not exist. */
  list(dir: string, options?: ListOptions): AsyncIterable<Entry>;
  /** NOT_FOUND when absent. */
  stat(path: string, options?: OpOptions): Promise<Entry>;
  read(path: string, options?: ReadOptions): Promise<Readable>;
  /** Creates or replaces a file, creating parent folders as needed; resolves once it is stored. */
  write(path: string, source: Readable | AsyncIterable<Uint8Array>, options: WriteOptions): Promise<Entry>;
  /** Removes a file or an empty folder; succeeds when already absent. NOT_EMPTY for a non-empty folder. */
  remove(path: string, options?: OpOptions): Promise<void>;
  /** Creates a folder and its parents; succeeds when it exists. */
  mkdir(path: string, options?: OpOptions): Promise<void>;
  close(): Promise<void>;

  /** Only when `serverSideMove`. Replaces `to` if it exists. */
  move?(from: string, to: string, options?: OpOptions): Promise<void>;
  /** Only when `setModTime`. */
  setModTime?(path: string, modTime: number, options?: OpOptions): Promise<void>;
  /** Only when `hashes` is not empty. */
  hash?(path: string, kind: HashKind, options?: OpOptions): Promise<string>;
  /** Only when `usage`. */
  usage?(options?: OpOptions): Promise<Usage>;
  /** Only when `resumableWrite` is not "none". A stale or unknown `resume` token starts over. */
  openUpload?(path: string, options: UploadOptions): Promise<Upload>;
  /**
   * `read` from the first byte, with the file's entry as of the opening: one look where `stat`
   * then `read` take two (a sync sending many small files stats each before reading it). Errors as
   * `stat`'s and `read`'s. Optional: without it, callers stat, then read.
   */
  readWithEntry?(path: string, options?: OpOptions): Promise<{ entry: Entry; body: Readable }>;
}

export interface AdapterContext {
  /** The configured device name (or a folder path for ad-hoc local targets). */
  name: string;
  logger: Logger;
  /** Folder relative paths in options are resolved against (the config file's folder). */
  baseDir: string;
}

export interface StorageAdapterDefinition<Options> {
  kind: string;
  /** Validates the device's options in ferry.yaml (without `type`). */
  optionsSchema: z.ZodType<Options>;
  capabilities: Readonly<Capabilities>;
  create(options: Options, context: AdapterContext): StorageAdapter;
  /** Why these options send credentials in clear (FTP without TLS, Basic over http://), if they do. */
  cleartext?(options: Options): string | undefined;
}

/**
 * What validating a device's entry needs of its kind: everything but the implementation, so that
 * a config can be checked without loading the protocol libraries of kinds it does not use.
 */
export type StorageKind<Options> = Omit<StorageAdapterDefinition<Options>, "create">;

const OPTIONAL_METHODS = [
  ["move", (c: Capabilities) => c.serverSideMove],
  ["setModTime", (c: Capabilities) => c.setModTime],
  ["hash", (c: Capabilities) => c.hashes.length > 0],
  ["usage", (c: Capabilities) => c.usage],
  ["openUpload", (c: Capabilities) => c.resumableWrite !== "none"],
] as const;

/** Throws when an adapter's optional methods and its capabilities disagree. */
export function assertCapabilitiesMatch(adapter: StorageAdapter): void {
  for (const [method, claimed] of OPTIONAL_METHODS) {
    const has = typeof adapter[method] === "function";
    if (has !== claimed(adapter.capabilities)) {
      throw new FerryError(
        "PROTOCOL",
        `${adapter.kind} adapter ${has ? "has" : "lacks"} ${method}() but its capabilities say otherwise`,
      );
    }
  }
}

export function defineStorageAdapter<Options>(
  definition: StorageAdapterDefinition<Options>,
): StorageAdapterDefinition<Options> {
  const capabilities = Object.freeze({
    ...definition.capabilities,
    hashes: Object.freeze([...definition.capabilities.hashes]),
  });
  return Object.freeze({
    ...definition,
    capabilities,
    create(options: Options, context: AdapterContext): StorageAdapter {
      const adapter = definition.create(options, context);
      assertCapabilitiesMatch(adapter);
      return adapter;
    },
  });
}
