/**
 * PrusaLink answers and network failures as FerryErrors. Messages name the printer, the operation
 * and the path, and carry the device's own words when it sent any.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { errorCodes, networkFailure } from "../../core/net-errors.ts";

export interface ErrorContext {
  /** Device name from ferry.yaml. */
  printer: string;
  /** What was attempted, e.g. "upload" or "GET /api/v1/status". */
  operation: string;
  /** Ferry path the request was about, when there is one. */
  subject?: string;
}

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: "PROTOCOL",
  401: "AUTH",
  403: "AUTH",
  404: "NOT_FOUND",
  405: "UNSUPPORTED",
  408: "TRANSIENT",
  409: "BUSY",
  411: "PROTOCOL",
  413: "NO_SPACE",
  // "Not a GCODE": the printer takes no other file, however often it is sent.
  415: "UNSUPPORTED",
  // "Filename contains invalid characters": the upload's temp file would not rename into place.
  422: "NAME_INVALID",
  429: "BUSY",
  500: "TRANSIENT",
  501: "UNSUPPORTED",
  502: "TRANSIENT",
  503: "UNAVAILABLE",
  504: "TRANSIENT",
  507: "NO_SPACE",
};

export function codeForStatus(status: number): ErrorCode {
  return STATUS_CODES[status] ?? (status >= 500 ? "TRANSIENT" : "PROTOCOL");
}

function where(context: ErrorContext): string {
  return `${context.printer}: ${context.operation}${context.subject === undefined ? "" : ` ${context.subject}`}`;
}

function subjectOf(context: ErrorContext): { subject?: string } {
  return context.subject === undefined ? {} : { subject: context.subject };
}

/** An unexpected HTTP status. `code` overrides the default mapping (e.g. 409 → NOT_EMPTY). */
export function statusError(
  status: number,
  context: ErrorContext,
  detail?: string,
  code?: ErrorCode,
): FerryError {
  const text = detail === undefined || detail === "" ? "" : `: ${detail}`;
  return new FerryError(
    code ?? codeForStatus(status),
    `${where(context)}: HTTP ${status}${text}`,
    subjectOf(context),
  );
}

/** The device's error text from a JSON Error object ({title, text}) or a plain-text body. */
export function errorDetail(body: string): string {
  const trimmed = body.trim();
  try {
    const json = JSON.parse(trimmed) as unknown;
    if (json && typeof json === "object") {
      const { title, text } = json as { title?: unknown; text?: unknown };
      const parts = [title, text].filter((p): p is string => typeof p === "string" && p !== "");
      if (parts.length > 0) return parts.join(": ");
    }
  } catch {
    // plain text
  }
  return trimmed.length > 300 ? `${trimmed.slice(0, 300)}…` : trimmed;
}

/** A failure below HTTP: refused or unreachable → UNAVAILABLE; reset or timed out mid-way → TRANSIENT. */
export function networkError(error: unknown, context: ErrorContext, signal?: AbortSignal): FerryError {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, ...subjectOf(context) };
  if (signal?.aborted || (error instanceof Error && error.name === "AbortError")) {
    return new FerryError("ABORTED", `${where(context)}: aborted`, options);
  }
  const codes = errorCodes(error);
  const failure = networkFailure(error)?.kind;
  // ETIMEDOUT too: a printer that falls silent, at connect or mid-way, has almost always been
  // switched off or left the network; UNAVAILABLE waits for it instead of spending attempts.
  if (failure === "unreachable" || failure === "timed-out") {
    return new FerryError(
      "UNAVAILABLE",
      `${where(context)}: printer unreachable (${codes.join(", ")})`,
      options,
    );
  }
  if (failure === "interrupted") {
    return new FerryError("TRANSIENT", `${where(context)}: connection lost (${message})`, options);
  }
  if (codes.includes("UND_ERR_REQ_CONTENT_LENGTH_MISMATCH")) {
    return new FerryError(
      "PROTOCOL",
      `${where(context)}: the data did not match its announced size`,
      options,
    );
  }
  return new FerryError("TRANSIENT", `${where(context)}: ${message}`, options);
}
