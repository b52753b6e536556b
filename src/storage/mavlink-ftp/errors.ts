/**
 * NAKs, timeouts and link failures of MAVLink FTP as FerryErrors naming the device, the path and the
 * request. FileNotFound → NOT_FOUND, NoSessionsAvailable → BUSY (another ground station holds the
 * vehicle's one session), FileExists → EXISTS, FileProtected → PERMISSION, UnknownCommand →
 * UNSUPPORTED; Fail and FailErrno → PROTOCOL naming the errno. EOF ends reads and listings and is
 * handled where it is expected.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { FTP_ERROR, FTP_ERROR_NAMES, OP_NAMES } from "../../core/mavlink-ftp.ts";

/** A NAK from the vehicle. */
export class FtpNak extends Error {
  override readonly name = "FtpNak";
  readonly code: number;
  readonly errno: number | undefined;
  readonly request: number;
  constructor(request: number, code: number, errno: number | undefined) {
    const what = FTP_ERROR_NAMES[code] ?? `error ${code}`;
    super(
      `${OP_NAMES[request] ?? `opcode ${request}`}: NAK ${what}${errno === undefined ? "" : ` (errno ${errno})`}`,
    );
    this.code = code;
    this.errno = errno;
    this.request = request;
  }
}

/** No answer after every retry: the vehicle is gone (unplugged, rebooting, out of radio range). */
export class FtpTimeout extends Error {
  override readonly name = "FtpTimeout";
  readonly request: number;
  constructor(request: number, tries: number) {
    super(`${OP_NAMES[request] ?? `opcode ${request}`}: no answer after ${tries} tries`);
    this.request = request;
  }
}

export const isNak = (error: unknown, code?: number): error is FtpNak =>
  error instanceof FtpNak && (code === undefined || error.code === code);

const NAK_CODES: Readonly<Record<number, ErrorCode>> = {
  [FTP_ERROR.FileNotFound]: "NOT_FOUND",
  [FTP_ERROR.NoSessionsAvailable]: "BUSY",
  [FTP_ERROR.FileExists]: "EXISTS",
  [FTP_ERROR.FileProtected]: "PERMISSION",
  [FTP_ERROR.UnknownCommand]: "UNSUPPORTED",
  // The session vanished under us: the vehicle rebooted or another station reset it.
  [FTP_ERROR.InvalidSession]: "TRANSIENT",
};

/** errno values NuttX and Linux share, for messages (the vehicle's own numbering). */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  36: "ENAMETOOLONG",
  39: "ENOTEMPTY",
};

function shown(path: string | undefined): string {
  return path === undefined ? "" : `${path === "" ? "/" : path}: `;
}

export function mavFailure(
  code: ErrorCode,
  device: string,
  path: string | undefined,
  what: string,
  options: { cause?: unknown; retryable?: boolean } = {},
): FerryError {
  return new FerryError(code, `${device}: ${shown(path)}${what}`, {
    subject: path ?? device,
    ...(options.cause === undefined ? {} : { cause: options.cause }),
    ...(options.retryable === undefined ? {} : { retryable: options.retryable }),
  });
}

/** Any failure of a request about `path` as a FerryError. */
export function mavError(error: unknown, device: string, path: string | undefined): FerryError {
  if (error instanceof FerryError) return error;
  if (error instanceof FtpNak) {
    const errno = error.errno;
    if (error.code === FTP_ERROR.FailErrno && errno !== undefined) {
      const name = ERRNO_NAMES[errno] ?? `errno ${errno}`;
      if (errno === 28)
        return mavFailure("NO_SPACE", device, path, `no space left on the vehicle (${error.message})`, {
          cause: error,
        });
      if (errno === 39)
        return mavFailure("NOT_EMPTY", device, path, `folder is not empty (${error.message})`, {
          cause: error,
        });
      if (errno === 2)
        return mavFailure("NOT_FOUND", device, path, `no such file or folder (${error.message})`, {
          cause: error,
        });
      if (errno === 36)
        return mavFailure("NAME_INVALID", device, path, `name too long for the vehicle (${error.message})`, {
          cause: error,
        });
      return mavFailure("PROTOCOL", device, path, `the vehicle failed with ${name} (${error.message})`, {
        cause: error,
        retryable: errno === 5 || errno === 16,
      });
    }
    const code = NAK_CODES[error.code] ?? "PROTOCOL";
    const words =
      code === "BUSY"
        ? "busy: another ground station holds the vehicle's FTP session"
        : code === "NOT_FOUND"
          ? "no such file or folder"
          : code === "UNSUPPORTED"
            ? "the vehicle does not support this request"
            : "the vehicle refused";
    return mavFailure(code, device, path, `${words} (${error.message})`, { cause: error });
  }
  if (error instanceof FtpTimeout) {
    return mavFailure("UNAVAILABLE", device, path, `the vehicle does not answer (${error.message})`, {
      cause: error,
    });
  }
  if (error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError")) {
    return mavFailure("ABORTED", device, path, "aborted", { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return mavFailure("UNAVAILABLE", device, path, `link failed (${message})`, { cause: error });
}
