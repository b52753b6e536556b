/**
 * PrusaLink's answers as FerryErrors: its statuses, its error bodies, and the words network failures
 * get (../http.ts maps those). Messages name the printer, the operation and the path, and carry the
 * device's own words when it sent any.
 */
import type { ErrorCode, FerryError } from "../../core/errors.ts";
import { httpError, statusCodes, type ErrorContext, type NetworkTerms } from "../http.ts";

/** A printer that does not answer is "unreachable"; an untrusted certificate fails like any connection. */
export const NETWORK_TERMS: NetworkTerms = { host: "printer" };

const codeForStatus = statusCodes({
  // "Filename contains invalid characters": the upload's temp file would not rename into place.
  422: "NAME_INVALID",
});

/** An unexpected HTTP status. `code` overrides the default mapping (e.g. 409 → NOT_EMPTY). */
export function statusError(
  status: number,
  context: ErrorContext,
  detail = "",
  code?: ErrorCode,
): FerryError {
  return httpError(status, context, detail, code ?? codeForStatus(status));
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

/** A status the caller did not expect, with the printer's words (a bare 401 gets a hint). */
export function refusal(status: number, body: string, context: ErrorContext, code?: ErrorCode): FerryError {
  const detail = errorDetail(body);
  const hint = "authentication failed: check the user name and password (or api_key)";
  return statusError(status, context, detail === "" && status === 401 ? hint : detail, code);
}
