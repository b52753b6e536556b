/**
 * OctoPrint answers and network failures as FerryErrors. Messages name the printer, the operation
 * and the path, and carry OctoPrint's own words (its `{"error": "..."}` bodies) when it sent any.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { errorCodes, networkFailure } from "../../core/net-errors.ts";

export interface ErrorContext {
  /** Device name from ferry.yaml. */
  printer: string;
  /** What was attempted, e.g. "upload" or "GET /api/job". */
  operation: string;
  /** Ferry path the request was about, when there is one. */
  subject?: string | undefined;
}

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: "PROTOCOL",
  // OctoPrint answers 403 to a missing or wrong key (an anonymous request); a proxy may say 401.
  401: "AUTH",
  403: "AUTH",
  404: "NOT_FOUND",
  405: "UNSUPPORTED",
  408: "TRANSIENT",
  409: "BUSY",
  411: "PROTOCOL",
  413: "NO_SPACE",
  // Not a print file OctoPrint takes: retrying will not change its mind.
  415: "UNSUPPORTED",
  429: "BUSY",
  500: "TRANSIENT",
  501: "UNSUPPORTED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "TRANSIENT",
  507: "NO_SPACE",
};

export function codeForStatus(status: number, detail = ""): ErrorCode {
  // A full disk shows as the OSError OctoPrint failed with.
  if (status === 500 && /\[Errno 28\]|No space left/i.test(detail)) return "NO_SPACE";
  return STATUS_CODES[status] ?? (status >= 500 ? "TRANSIENT" : "PROTOCOL");
}

function where(context: ErrorContext): string {
  return `${context.printer}: ${context.operation}${context.subject === undefined ? "" : ` ${context.subject}`}`;
}

function subjectOf(context: ErrorContext): { subject?: string } {
  return context.subject === undefined ? {} : { subject: context.subject };
}

/** An unexpected HTTP status; `code` overrides the mapping (a 409 of a job command is CONFLICT). */
export function statusError(
  status: number,
  context: ErrorContext,
  detail = "",
  code?: ErrorCode,
): FerryError {
  const text = detail === "" ? "" : `: ${detail}`;
  return new FerryError(
    code ?? codeForStatus(status, detail),
    `${where(context)}: HTTP ${status}${text}`,
    subjectOf(context),
  );
}

/** OctoPrint's words from an error body: `{"error": "..."}`, else the text (HTML tags dropped). */
export function errorDetail(body: string): string {
  const trimmed = body.trim();
  try {
    const json = JSON.parse(trimmed) as unknown;
    if (json && typeof json === "object" && typeof (json as { error?: unknown }).error === "string") {
      return (json as { error: string }).error;
    }
  } catch {
    // not JSON
  }
  const text = trimmed
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** A failure below HTTP: refused or unreachable → UNAVAILABLE; reset mid-way → TRANSIENT. */
export function networkError(error: unknown, context: ErrorContext, signal?: AbortSignal): FerryError {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, ...subjectOf(context) };
  if (signal?.aborted || (error instanceof Error && error.name === "AbortError")) {
    return new FerryError("ABORTED", `${where(context)}: aborted`, options);
  }
  const failure = networkFailure(error)?.kind;
  if (failure === "unreachable" || failure === "timed-out") {
    return new FerryError(
      "UNAVAILABLE",
      `${where(context)}: OctoPrint unreachable (${errorCodes(error).join(", ")})`,
      options,
    );
  }
  if (failure === "untrusted") {
    return new FerryError(
      "PROTOCOL",
      `${where(context)}: its TLS certificate is not trusted (${message})`,
      options,
    );
  }
  if (failure === "interrupted") {
    return new FerryError("TRANSIENT", `${where(context)}: connection lost (${message})`, options);
  }
  return new FerryError("TRANSIENT", `${where(context)}: ${message}`, options);
}
