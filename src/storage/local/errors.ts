/**
 * Node's filesystem errors (errno codes) translated into FerryErrors that name the device and the
 * path, keeping the original error as `cause`.
 */
import { FerryError, toFerryError, type ErrorCode } from "../../core/errors.ts";

const CODES: Readonly<Record<string, ErrorCode>> = {
  ENOENT: "NOT_FOUND",
  // A path component is a file: nothing can exist below it.
  ENOTDIR: "NOT_FOUND",
  // A symbolic link where none is followed (O_NOFOLLOW), or links in a loop: nothing to read there.
  ELOOP: "NOT_FOUND",
  EEXIST: "EXISTS",
  // A folder is where a file was asked for (rename over a folder).
  EISDIR: "EXISTS",
  ENOTEMPTY: "NOT_EMPTY",
  EACCES: "PERMISSION",
  EPERM: "PERMISSION",
  EROFS: "PERMISSION",
  ENOSPC: "NO_SPACE",
  EDQUOT: "NO_SPACE",
  ENAMETOOLONG: "NAME_INVALID",
  EINVAL: "NAME_INVALID",
  EILSEQ: "NAME_INVALID",
  EBUSY: "BUSY",
  EIO: "UNAVAILABLE",
  ENODEV: "UNAVAILABLE",
  ENXIO: "UNAVAILABLE",
  ESTALE: "UNAVAILABLE",
  ENOTCONN: "UNAVAILABLE",
};

const WORDS: Readonly<Partial<Record<ErrorCode, string>>> = {
  NOT_FOUND: "no such file or folder",
  EXISTS: "already exists",
  NOT_EMPTY: "folder is not empty",
  PERMISSION: "permission denied",
  NO_SPACE: "no space left",
  NAME_INVALID: "name not allowed here",
  BUSY: "busy",
  UNAVAILABLE: "device unavailable",
};

export function errnoCode(error: unknown): string | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "string") return error.code;
  return undefined;
}

/** A FerryError for `error`, which happened on `path` (relative to the adapter's root) of `storage`. */
export function fsError(error: unknown, storage: string, path: string): FerryError {
  if (error instanceof FerryError) return error;
  const errno = errnoCode(error);
  const code = errno === undefined ? undefined : CODES[errno];
  if (errno === undefined || code === undefined) {
    const wrapped = toFerryError(error);
    if (wrapped.code === "ABORTED") return wrapped;
    const detail = errno === undefined ? wrapped.message : `${errno}: ${wrapped.message}`;
    return new FerryError("PROTOCOL", `${storage}: ${shown(path)}: ${detail}`, {
      cause: error,
      subject: path,
    });
  }
  return new FerryError(code, `${storage}: ${shown(path)}: ${WORDS[code] ?? code} (${errno})`, {
    cause: error,
    subject: path,
  });
}

/** Whether `error` says that nothing is at the path. */
export function isMissing(error: unknown): boolean {
  const errno = errnoCode(error);
  return errno === "ENOENT" || errno === "ENOTDIR";
}

export function localError(code: ErrorCode, storage: string, path: string, what: string): FerryError {
  return new FerryError(code, `${storage}: ${shown(path)}: ${what}`, { subject: path });
}

function shown(path: string): string {
  return path === "" ? "/" : path;
}
