/**
 * SFTP status replies, SSH and socket failures translated into FerryErrors that name the device
 * and the path and keep the original error as `cause`.
 *
 * OpenSSH's sftp-server speaks SFTP v3 and folds errno into few codes: ENOENT/ENOTDIR → "No such
 * file", EACCES/EPERM → "Permission denied", ENAMETOOLONG/EINVAL → "Bad message", and everything
 * else (ENOSPC, EEXIST, ENOTEMPTY, EISDIR…) → "Failure". Where a plain "Failure" matters (a full
 * disk, a folder that exists or is not empty) the adapter asks the server a follow-up question;
 * this file maps what a reply says by itself. Later SFTP drafts' codes are mapped too, for servers
 * that send them.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { errorCodes, networkFailure } from "../../core/net-errors.ts";

/** SFTP status codes (draft-ietf-secsh-filexfer; v3 ends at 8). */
export const STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  [STATUS.NO_SUCH_FILE]: "NOT_FOUND",
  [STATUS.PERMISSION_DENIED]: "PERMISSION",
  [STATUS.FAILURE]: "PROTOCOL",
  // OpenSSH: ENAMETOOLONG and EINVAL, i.e. a name the server's filesystem refuses.
  [STATUS.BAD_MESSAGE]: "NAME_INVALID",
  [STATUS.NO_CONNECTION]: "TRANSIENT",
  [STATUS.CONNECTION_LOST]: "TRANSIENT",
  [STATUS.OP_UNSUPPORTED]: "UNSUPPORTED",
  9: "PROTOCOL", // INVALID_HANDLE
  10: "NOT_FOUND", // NO_SUCH_PATH
  11: "EXISTS", // FILE_ALREADY_EXISTS
  12: "PERMISSION", // WRITE_PROTECT
  13: "UNAVAILABLE", // NO_MEDIA
  14: "NO_SPACE", // NO_SPACE_ON_FILESYSTEM
  15: "NO_SPACE", // QUOTA_EXCEEDED
  16: "NOT_FOUND", // UNKNOWN_PRINCIPAL
  17: "BUSY", // LOCK_CONFLICT
  18: "NOT_EMPTY", // DIR_NOT_EMPTY
  19: "NOT_FOUND", // NOT_A_DIRECTORY
  20: "NAME_INVALID", // INVALID_FILENAME
  21: "NOT_FOUND", // LINK_LOOP
  22: "PERMISSION", // CANNOT_DELETE
  23: "PROTOCOL", // INVALID_PARAMETER
  24: "EXISTS", // FILE_IS_A_DIRECTORY
  25: "BUSY", // BYTE_RANGE_LOCK_CONFLICT
  26: "BUSY", // BYTE_RANGE_LOCK_REFUSED
  27: "BUSY", // DELETE_PENDING
  28: "PROTOCOL", // FILE_CORRUPT
  29: "PERMISSION", // OWNER_INVALID
  30: "PERMISSION", // GROUP_INVALID
};

const WORDS: Readonly<Partial<Record<ErrorCode, string>>> = {
  NOT_FOUND: "no such file or folder",
  EXISTS: "already exists",
  NOT_EMPTY: "folder is not empty",
  PERMISSION: "permission denied",
  NO_SPACE: "no space left on the server",
  NAME_INVALID: "name refused by the server",
  BUSY: "busy",
  UNSUPPORTED: "not supported by this server",
};

function shown(path: string): string {
  return path === "" ? "/" : path;
}

/** A FerryError of `code` about `path` of `device`, worded "device: path: what". */
export function sftpFailure(
  code: ErrorCode,
  device: string,
  path: string | undefined,
  what: string,
  cause?: unknown,
): FerryError {
  const where = path === undefined ? "" : `${shown(path)}: `;
  return new FerryError(code, `${device}: ${where}${what}`, {
    subject: path ?? device,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The SFTP status code of an error from ssh2's SFTP client, if it is one. */
export function sftpStatus(error: unknown): number | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "number") return error.code;
  return undefined;
}

/** Whether an SFTP error says that nothing is at the path. */
export function isMissing(error: unknown): boolean {
  return sftpStatus(error) === STATUS.NO_SUCH_FILE;
}

/** ssh2 marks where a connection failed: "client-authentication", "client-timeout", "handshake"… */
function levelOf(error: unknown): string | undefined {
  if (error instanceof Error && "level" in error && typeof error.level === "string") return error.level;
  return undefined;
}

/** Whether `error` says that the SSH connection (not the request) broke. */
export function isConnectionLoss(error: unknown): boolean {
  // Ours are decided already (a lost partial is TRANSIENT, but the connection is fine).
  if (error instanceof FerryError) return false;
  const status = sftpStatus(error);
  if (status !== undefined) return status === STATUS.NO_CONNECTION || status === STATUS.CONNECTION_LOST;
  // Any kind of network failure (ETIMEDOUT included) but "untrusted", which is TLS's, not SSH's.
  const kind = networkFailure(error)?.kind;
  if (kind !== undefined && kind !== "untrusted") return true;
  const message = error instanceof Error ? error.message : "";
  return /No response from server|Not connected|connection (lost|closed)|Channel open failure|socket/i.test(
    message,
  );
}

/** A failure of a request about `path` (SFTP status, or the connection breaking under it). */
export function sftpError(error: unknown, device: string, path: string): FerryError {
  if (error instanceof FerryError) return error;
  const status = sftpStatus(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status !== undefined) {
    const code = STATUS_CODES[status] ?? "PROTOCOL";
    const words = WORDS[code] ?? "the server refused";
    return sftpFailure(code, device, path, `${words} (SFTP status ${status}: ${message})`, error);
  }
  return connectionError(error, device, path);
}

/** A failure to reach, authenticate to or stay connected with the server. */
export function connectionError(error: unknown, device: string, path?: string): FerryError {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = errorCodes(error)[0];
  const level = levelOf(error);
  if (error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError")) {
    return sftpFailure("ABORTED", device, path, "aborted", error);
  }
  if (level === "client-authentication") {
    return new FerryError("AUTH", `${device}: the server refused the login (${message})`, {
      subject: device,
      cause: error,
      retryable: false,
    });
  }
  // Not ETIMEDOUT: a connect that gets no answer is ssh2's "client-timeout" (below); the OS's
  // timeout is an open session that died, a lost connection (TRANSIENT, at the end).
  const failure = networkFailure(error);
  if (failure?.kind === "unreachable") {
    return sftpFailure("UNAVAILABLE", device, path, `server unreachable (${failure.code})`, error);
  }
  if (level === "client-timeout") {
    return sftpFailure("UNAVAILABLE", device, path, `the server did not answer in time (${message})`, error);
  }
  if (/before handshake/.test(message)) {
    return sftpFailure("UNAVAILABLE", device, path, `the server closed the connection (${message})`, error);
  }
  if (level === "handshake") {
    // No common algorithm, a broken peer: trying again will not help.
    return new FerryError("PROTOCOL", `${device}: SSH handshake failed (${message})`, {
      subject: device,
      cause: error,
      retryable: false,
    });
  }
  return sftpFailure("TRANSIENT", device, path, `connection lost (${code ?? message})`, error);
}

/** The server's host key is not the one configured or known: never connect, never retry. */
export function hostKeyError(device: string, offered: string, why: string): FerryError {
  return new FerryError(
    "AUTH",
    `${device}: host key verification failed: the server offered ${offered}, ${why}`,
    { subject: device, retryable: false },
  );
}

/** The options cannot work: a human must fix ferry.yaml. */
export function configError(device: string, what: string, cause?: unknown): FerryError {
  return new FerryError("AUTH", `${device}: ${what}`, {
    subject: device,
    retryable: false,
    ...(cause === undefined ? {} : { cause }),
  });
}
