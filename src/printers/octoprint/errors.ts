/**
 * OctoPrint's answers as FerryErrors: its statuses, its error bodies (`{"error": "..."}`), and the
 * words network failures get (../http.ts maps those). Messages name the printer, the operation and
 * the path, and carry OctoPrint's own words when it sent any.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { subjectOf, where, type ErrorContext, type NetworkTerms } from "../http.ts";

/** The server in front of the printer is what is away; a certificate it presents must be trusted. */
export const NETWORK_TERMS: NetworkTerms = {
  host: "OctoPrint",
  untrusted: { code: "PROTOCOL", text: "its TLS certificate is not trusted" },
};

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

/** A status the caller did not expect, with OctoPrint's words (401 and 403: the key is refused). */
export function refusal(status: number, body: string, context: ErrorContext, code?: ErrorCode): FerryError {
  const detail = errorDetail(body);
  const refused = `the API key is refused${detail === "" ? "" : ` (${detail})`}`;
  return statusError(status, context, status === 403 || status === 401 ? refused : detail, code);
}
