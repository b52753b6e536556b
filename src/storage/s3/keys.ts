/**
 * Ferry paths as S3 keys. S3 has no folders: a file `a/b.gcode` is the key `<root>a/b.gcode`, a
 * folder is every key under `<root>a/` plus the zero-byte marker `<root>a/` that mkdir puts there
 * (as the S3 console, rclone and s3fs do). Also the modification time kept in object metadata and
 * the MD5 an ETag carries.
 */
import { FerryError } from "../../core/errors.ts";
import { normalizePath } from "../../core/paths.ts";

/** C0 control characters: XML 1.0 (every S3 listing) cannot carry most of them, and \r not as itself. */
export const FORBIDDEN_CHARS = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("");

/** S3's limit on a whole key (root folder included); RGW answers InvalidObjectName beyond it. */
export const MAX_KEY_BYTES = 1024;

/** Object metadata (`x-amz-meta-mtime`) holding the wanted modification time, as rclone keeps it. */
export const MTIME_META = "mtime";

export class Keys {
  /** "" or the root folder with a trailing slash: what every key of this device starts with. */
  readonly root: string;
  readonly #storage: string;

  constructor(storage: string, root: string) {
    this.#storage = storage;
    const folder = normalizePath(root);
    this.root = folder === "" ? "" : `${folder}/`;
  }

  /** A Ferry path, checked: NAME_INVALID for `..` escapes and, when `writing`, for forbidden characters. */
  path(input: string, writing: boolean): string {
    let path: string;
    try {
      path = normalizePath(input);
    } catch (error) {
      throw this.#invalid(input, "the path escapes the root folder", error);
    }
    if (writing) {
      for (const char of path) {
        if (FORBIDDEN_CHARS.includes(char)) {
          throw this.#invalid(path, `names may not contain control characters (${JSON.stringify(char)})`);
        }
      }
    }
    return path;
  }

  /** The key of a file. */
  file(path: string): string {
    return this.root + path;
  }

  /** The prefix of a folder's contents, which is also the key of its marker ("" → the root). */
  folder(path: string): string {
    return path === "" ? this.root : `${this.root}${path}/`;
  }

  /** The Ferry path of a key under `prefix`, or undefined when Ferry could not address it ("a//b"). */
  relative(key: string, prefix: string): string | undefined {
    const rest = key.slice(prefix.length);
    const parts = rest.split("/");
    if (parts.some((part) => part === "" || part === "." || part === "..")) return undefined;
    return rest;
  }

  #invalid(path: string, what: string, cause?: unknown): FerryError {
    return new FerryError("NAME_INVALID", `${this.#storage}: ${path === "" ? "/" : path}: ${what}`, {
      subject: path,
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

/**
 * The spellings a path may be stored under: as given, then NFC, then NFD. Ferry writes NFC; other
 * tools (macOS) may have written NFD. ASCII paths have one spelling, so only they cost nothing extra.
 */
export function spellings(path: string): string[] {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(path)) return [path];
  return [...new Set([path, path.normalize("NFC"), path.normalize("NFD")])];
}

/** Milliseconds as rclone writes `mtime`: seconds since the epoch with a fraction. */
export function formatMtime(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/** The milliseconds of an `mtime` value (rclone writes up to nanoseconds), or undefined if it is not one. */
export function parseMtime(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?\d+(\.\d+)?$/.test(value.trim())) return undefined;
  const ms = Math.round(Number(value) * 1000);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The MD5 an ETag is, for objects stored in one PUT ("<32 hex>"); multipart ETags ("<hex>-<parts>") are not one. */
export function md5OfEtag(etag: string | undefined): string | undefined {
  const match = etag === undefined ? null : /^"?([0-9a-fA-F]{32})"?$/.exec(etag);
  return match?.[1]?.toLowerCase();
}

/** A key as a CopySource wants it: each segment URL-encoded, the slashes kept. */
export function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}
