/**
 * WebDAV answers and network failures as FerryErrors. Messages name the device, the operation and
 * the path, and carry the server's own words when it sent any. A server that refuses a request for
 * a path with a name longer than a Linux filesystem keeps (Apache: 403, nginx: 500 or 409) refused
 * the name: that is NAME_INVALID naming it, not a permission or server problem.
 */
import { FerryError, isFerryError, raceAbort, type ErrorCode } from "../../core/errors.ts";
import { errorCodes, networkFailure } from "../../core/net-errors.ts";

export interface ErrorContext {
  /** Device name from ferry.yaml. */
  device: string;
  /** What was attempted: "upload", "list", "PROPFIND"... */
  operation: string;
  /** Ferry path the request was about ("" is the root). */
  path: string;
}

/** Longest name component (UTF-8 bytes) of the filesystems behind Apache and nginx. */
export const MAX_NAME_BYTES = 255;

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: "PROTOCOL",
  401: "AUTH",
  403: "PERMISSION",
  404: "NOT_FOUND",
  405: "UNSUPPORTED",
  408: "TRANSIENT",
  // A PUT, MKCOL or MOVE whose parent collection is missing.
  409: "NOT_FOUND",
  411: "PROTOCOL",
  412: "EXISTS",
  // The server refuses bodies this large (LimitRequestBody, client_max_body_size).
  413: "NO_SPACE",
  414: "NAME_INVALID",
  415: "PROTOCOL",
  416: "PROTOCOL",
  423: "BUSY",
  429: "BUSY",
  500: "TRANSIENT",
  501: "UNSUPPORTED",
  502: "TRANSIENT",
  503: "UNAVAILABLE",
  504: "TRANSIENT",
  507: "NO_SPACE",
};

/** Statuses servers give for a name their filesystem cannot store. */
const NAME_REFUSALS = new Set([400, 403, 409, 414, 500]);

export function codeForStatus(status: number): ErrorCode {
  return STATUS_CODES[status] ?? (status >= 500 ? "TRANSIENT" : "PROTOCOL");
}

function where(context: ErrorContext): string {
  return `${context.device}: ${context.operation} ${context.path === "" ? "/" : context.path}`;
}

/** The first name of `path` longer than the server's filesystems keep, if any. */
export function tooLongName(path: string): string | undefined {
  return path.split("/").find((name) => Buffer.byteLength(name) > MAX_NAME_BYTES);
}

/** An unexpected HTTP status; `code` overrides the mapping (e.g. 409 → EXISTS). */
export function statusError(
  status: number,
  context: ErrorContext,
  detail = "",
  code?: ErrorCode,
): FerryError {
  // "HTTP 404: 404 Not Found" says it twice.
  const words = detail.replace(new RegExp(`^${status}\\s+`), "");
  const text = words === "" ? "" : `: ${words}`;
  const long = NAME_REFUSALS.has(status) ? tooLongName(context.path) : undefined;
  if (long !== undefined) {
    return new FerryError(
      "NAME_INVALID",
      `${where(context)}: the server refused the name "${long}" (${Buffer.byteLength(long)} bytes, more than ${MAX_NAME_BYTES}; HTTP ${status})`,
      { subject: context.path },
    );
  }
  const wanted = code ?? codeForStatus(status);
  const hint = status === 401 && detail === "" ? ": wrong user name or password" : "";
  return new FerryError(wanted, `${where(context)}: HTTP ${status}${hint}${text}`, { subject: context.path });
}

export function davError(
  code: ErrorCode,
  context: ErrorContext,
  what: string,
  retryable?: boolean,
): FerryError {
  return new FerryError(code, `${where(context)}: ${what}`, {
    subject: context.path,
    ...(retryable === undefined ? {} : { retryable }),
  });
}

/** The server's words from an error body: mod_dav's <m:human-readable>, an HTML title, or plain text. */
export function errorDetail(body: string): string {
  const human = /<(?:\w+:)?human-readable[^>]*>([\s\S]*?)<\//i.exec(body)?.[1];
  const title = /<title>([\s\S]*?)<\/title>/i.exec(body)?.[1];
  const text = (human ?? title ?? (/^\s*</.test(body) ? "" : body)).replace(/\s+/g, " ").trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Narrower than "interrupted": what a server closing an idle kept-alive connection looks like. */
const DROPPED = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);

/** Whether `error` is a connection that dropped (a kept-alive one the server closed): worth one new one. */
export function isDroppedConnection(error: FerryError): boolean {
  return error.code === "TRANSIENT" && errorCodes(error.cause).some((c) => DROPPED.has(c));
}

/** A failure below HTTP: refused or unreachable → UNAVAILABLE; reset or timed out midway → TRANSIENT. */
export function networkError(error: unknown, context: ErrorContext, signal?: AbortSignal): FerryError {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, subject: context.path };
  if (signal?.aborted === true || (error instanceof Error && error.name === "AbortError")) {
    return new FerryError("ABORTED", `${where(context)}: aborted`, options);
  }
  const codes = errorCodes(error);
  const failure = networkFailure(error);
  // ETIMEDOUT too: the OS gave up on a server that stopped answering altogether (undici's own
  // timeouts for a slow answer are UND_ERR_*_TIMEOUT, "interrupted").
  if (failure?.kind === "unreachable" || failure?.kind === "timed-out") {
    return new FerryError(
      "UNAVAILABLE",
      `${where(context)}: server unreachable (${codes.join(", ")})`,
      options,
    );
  }
  if (failure?.kind === "interrupted") {
    return new FerryError("TRANSIENT", `${where(context)}: connection lost (${message})`, options);
  }
  if (failure?.kind === "untrusted") {
    return new FerryError(
      "AUTH",
      `${where(context)}: the server's TLS certificate is not trusted (${failure.code}); set ca_file`,
      options,
    );
  }
  if (codes.includes("UND_ERR_REQ_CONTENT_LENGTH_MISMATCH")) {
    return new FerryError("PROTOCOL", `${where(context)}: the data did not match its announced size`, {
      ...options,
      retryable: true,
    });
  }
  return new FerryError("TRANSIENT", `${where(context)}: ${message}`, options);
}

/** ABORTED naming the device, operation and path. */
export function abortedError(context: ErrorContext, signal: AbortSignal | undefined): FerryError {
  return new FerryError("ABORTED", `${where(context)}: aborted`, {
    cause: signal?.reason,
    subject: context.path,
  });
}

/** Throws ABORTED when `signal` has fired (call before each step). */
export function checkAborted(signal: AbortSignal | undefined, context: ErrorContext): void {
  if (signal?.aborted === true) throw abortedError(context, signal);
}

/** `promise`, or ABORTED as soon as `signal` fires (even when the promise never settles). */
export async function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  context: ErrorContext,
): Promise<T> {
  try {
    return await raceAbort(promise, signal);
  } catch (error) {
    if (signal?.aborted === true && isFerryError(error, "ABORTED")) throw abortedError(context, signal);
    throw error;
  }
}
