/**
 * FTP replies, socket and TLS failures translated into FerryErrors that name the device and the
 * path, keep the server's own words and the original error as `cause`.
 *
 * FTP reply codes say less than errno: vsftpd answers 550 for "missing", "not allowed" and "not
 * empty" alike, and 451 "Failure writing to local file" for a full disk. The adapter asks the
 * server follow-up questions where it matters (is it a folder? is it there?); this file maps what
 * a reply says by itself, given what was being done.
 */
import { FTPError } from "basic-ftp";
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { errorCodes, networkFailure, type NetworkFailure } from "../../core/net-errors.ts";

/** What was being done when the error happened. */
export type FtpAction =
  | "connect"
  | "login"
  | "tls"
  | "list"
  | "stat"
  | "read"
  | "upload"
  | "rename"
  | "mkdir"
  | "remove"
  | "set-time";

export interface FtpErrorContext {
  /** Device name from ferry.yaml. */
  device: string;
  /** Ferry path the operation was about ("" for the root or the session). */
  path: string;
  action: FtpAction;
}

function shown(path: string): string {
  return path === "" ? "/" : path;
}

/** A FerryError of `code` about `context`, worded "device: path: what". */
export function ftpFailure(
  code: ErrorCode,
  context: FtpErrorContext,
  what: string,
  cause?: unknown,
  retryable?: boolean,
): FerryError {
  const session = context.action === "connect" || context.action === "login" || context.action === "tls";
  const where = session && context.path === "" ? "" : `${shown(context.path)}: `;
  return new FerryError(code, `${context.device}: ${where}${what}`, {
    subject: context.path === "" ? context.device : context.path,
    ...(cause === undefined ? {} : { cause }),
    ...(retryable === undefined ? {} : { retryable }),
  });
}

/** The code a server reply stands for, given the action it answered. */
export function replyCode(reply: number, message: string, action: FtpAction): ErrorCode {
  if (reply === 530 || reply === 331 || reply === 332) return "AUTH";
  if (reply === 421) return /too many|maximum/i.test(message) ? "BUSY" : "UNAVAILABLE";
  if (reply === 425 || reply === 426) return "TRANSIENT";
  if (reply === 450) return "BUSY";
  // vsftpd says "Failure writing to local file" for ENOSPC and EDQUOT alike (and for EIO, rarely).
  if (reply === 451) return action === "upload" && /writ/i.test(message) ? "NO_SPACE" : "TRANSIENT";
  if (reply === 452 || reply === 552) return "NO_SPACE";
  if (reply === 500 && /too long/i.test(message)) return "NAME_INVALID";
  if (reply === 502 || reply === 504) return "UNSUPPORTED";
  if (reply === 522 || reply === 533 || reply === 534) return "AUTH";
  if (reply === 553) return action === "upload" ? "PERMISSION" : "NAME_INVALID";
  if (reply === 550) {
    if (/permission|denied|not allowed/i.test(message)) return "PERMISSION";
    return action === "upload" || action === "mkdir" || action === "rename" ? "PERMISSION" : "NOT_FOUND";
  }
  return reply >= 400 && reply < 500 ? "TRANSIENT" : "PROTOCOL";
}

/**
 * A socket or TLS failure, as the shared classes have it but for EAI_AGAIN: the resolver's own
 * "temporary failure, try again" (often a DNS server that timed out) is a timeout here, retried a
 * few times (TRANSIENT) like ETIMEDOUT and basic-ftp's "Timeout (control socket)", not a server
 * that is not there.
 */
function ftpNetworkFailure(error: unknown): NetworkFailure | undefined {
  const failure = networkFailure(error);
  return failure?.code === "EAI_AGAIN" ? { kind: "timed-out", code: failure.code } : failure;
}

/** The server's reply text without the code: "Login incorrect." */
function replyText(error: FTPError): string {
  return error.message.replace(/^\d{3}[ -]?/, "").trim();
}

/** Translates anything an FTP operation threw. */
export function ftpError(error: unknown, context: FtpErrorContext): FerryError {
  if (error instanceof FerryError) return error;
  if (error instanceof FTPError) {
    const code = replyCode(error.code, error.message, context.action);
    const said = `${error.code} ${replyText(error)}`;
    if (code === "AUTH" && (context.action === "login" || context.action === "connect")) {
      return ftpFailure(code, context, `the server refused the login (${said})`, error);
    }
    if (code === "AUTH" && context.action === "tls") {
      return ftpFailure(code, context, `the server refused AUTH TLS, explicit FTPS (${said})`, error);
    }
    return ftpFailure(code, context, `${context.action} failed (${said})`, error);
  }
  const errno = errorCodes(error)[0];
  const message = error instanceof Error ? error.message : String(error);
  const session = context.action === "connect" || context.action === "login" || context.action === "tls";
  const failure = ftpNetworkFailure(error);
  if (failure?.kind === "untrusted") {
    const hint =
      failure.code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? "it was issued for another host name"
        : "set ca_file to the certificate of the CA that signed it (or the server's own, if self-signed)";
    return ftpFailure(
      "AUTH",
      context,
      `the server's TLS certificate is not trusted (${failure.code}: ${message}); ${hint}`,
      error,
    );
  }
  if (errno?.startsWith("ERR_SSL_") === true) {
    if (session) {
      return ftpFailure(
        "PROTOCOL",
        context,
        `TLS failed (${errno}); is secure right for this port?`,
        error,
        false,
      );
    }
    // An established session broke: vsftpd writes a plaintext "500 OOPS" into it as it dies.
    return ftpFailure(
      "UNAVAILABLE",
      context,
      `the TLS session broke during ${context.action} (${errno})`,
      error,
    );
  }
  if (failure?.kind === "unreachable") {
    return ftpFailure("UNAVAILABLE", context, `cannot reach the server (${failure.code})`, error);
  }
  if (failure?.kind === "interrupted") {
    return ftpFailure(
      "UNAVAILABLE",
      context,
      `the connection broke during ${context.action} (${failure.code})`,
      error,
    );
  }
  if (failure?.kind === "timed-out" || /timeout/i.test(message)) {
    return ftpFailure("TRANSIENT", context, `${context.action} timed out (${message})`, error);
  }
  if (/closed|FIN packet|transmission error|data connection/i.test(message)) {
    return ftpFailure(
      "UNAVAILABLE",
      context,
      `the connection broke during ${context.action} (${message})`,
      error,
    );
  }
  return ftpFailure("PROTOCOL", context, `${context.action} failed: ${message}`, error);
}
