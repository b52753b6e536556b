/**
 * OctoPrint's answers as FerryErrors: its statuses, its error bodies (`{"error": "..."}`), and the
 * words network failures get (../http.ts maps those). Messages name the printer, the operation and
 * the path, and carry OctoPrint's own words when it sent any.
 */
import type { ErrorCode, FerryError } from "../../core/errors.ts";
import { httpError, statusCodes, type ErrorContext, type NetworkTerms } from "../http.ts";

/** The server in front of the printer is what is away; a certificate it presents must be trusted. */
export const NETWORK_TERMS: NetworkTerms = {
  host: "OctoPrint",
  untrusted: { code: "PROTOCOL", text: "its TLS certificate is not trusted" },
};

const codeForStatus = statusCodes({ 502: "UNAVAILABLE" });

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

/**
 * A status the caller did not expect, with OctoPrint's words; `code` overrides the mapping (a 409
 * of a job command is CONFLICT). OctoPrint answers 403 to a missing or wrong key (an anonymous
 * request); a proxy may say 401.
 */
export function refusal(status: number, body: string, context: ErrorContext, code?: ErrorCode): FerryError {
  const detail = errorDetail(body);
  // A full disk shows as the OSError OctoPrint failed with.
  const full = status === 500 && /\[Errno 28\]|No space left/i.test(detail);
  const refused = `the API key is refused${detail === "" ? "" : ` (${detail})`}`;
  const words = status === 403 || status === 401 ? refused : detail;
  return httpError(status, context, words, code ?? (full ? "NO_SPACE" : codeForStatus(status)));
}
