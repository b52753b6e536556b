/**
 * Moonraker's answers as FerryErrors: its codes, its error bodies, and the words network failures
 * get (../http.ts maps those). Messages name the printer, the operation and the path, and carry
 * Moonraker's own words.
 *
 * Moonraker answers an error with `{"error": {"code", "message", "traceback"?}}`. Its API endpoints
 * put their text in `message`; its file handlers (upload, download, DELETE of a file) leave the bare
 * HTTP reason there ("Forbidden") and the text only in the traceback's last line
 * ("tornado.web.HTTPError: HTTP 403: Forbidden (File currently in use)").
 */
import { STATUS_CODES } from "node:http";
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { subjectOf, where, type ErrorContext, type NetworkTerms } from "../http.ts";

/** A printer that does not answer is "unreachable"; a certificate that does not check out wants a human. */
export const NETWORK_TERMS: NetworkTerms = {
  host: "printer",
  untrusted: { code: "AUTH", text: "the printer's certificate is not trusted" },
};

/** What Moonraker said: its HTTP (or JSON-RPC) code and text. */
export interface MoonrakerFault {
  code: number;
  message: string;
}

/** Moonraker's 403 for the file Klipper has loaded (printing or paused), at upload, delete or move. */
export function isFileInUse(fault: MoonrakerFault): boolean {
  return fault.code === 403 && /currently in use|is loaded/i.test(fault.message);
}

/** The FerryError code for a Moonraker status. Most of its refusals are 400 and read per call. */
export function codeForFault(fault: MoonrakerFault): ErrorCode {
  const { code } = fault;
  if (isFileInUse(fault)) return "BUSY";
  if (code === 401 || code === -32602)
    return /unauthorized|api key/i.test(fault.message) ? "AUTH" : "PROTOCOL";
  if (code === 403) return "PERMISSION";
  if (code === 404 || code === -32601) return "NOT_FOUND";
  if (code === 405) return "UNSUPPORTED";
  // A checksum mismatch: the bytes were damaged on the way; sending them again may work.
  if (code === 422) return "TRANSIENT";
  if (code === 503) return "UNAVAILABLE";
  if (code >= 500) return "TRANSIENT";
  return "PROTOCOL";
}

/** Moonraker's text out of an error body (JSON as above, or plain text from a proxy). */
export function faultOf(status: number, body: string): MoonrakerFault {
  const trimmed = body.trim();
  try {
    const json = JSON.parse(trimmed) as {
      error?: { code?: unknown; message?: unknown; traceback?: unknown };
    };
    const error = json.error;
    if (error && typeof error === "object") {
      const code = typeof error.code === "number" ? error.code : status;
      let message = typeof error.message === "string" ? error.message : "";
      // A bare reason phrase: the text is in the traceback's last line, in parentheses.
      if (typeof error.traceback === "string" && (message === "" || message === STATUS_CODES[status])) {
        const last = error.traceback.trim().split("\n").at(-1) ?? "";
        const detail = /\((.*)\)\s*$/.exec(last)?.[1];
        if (detail !== undefined && detail !== "") message = detail;
      }
      return { code, message: message === "" ? (STATUS_CODES[status] ?? "") : message };
    }
  } catch {
    // not JSON
  }
  const text = trimmed.length > 300 ? `${trimmed.slice(0, 300)}…` : trimmed;
  return { code: status, message: text === "" ? (STATUS_CODES[status] ?? "") : text };
}

/** An error answer as a FerryError. `code` overrides the mapping (a call that knows better). */
export function faultError(fault: MoonrakerFault, context: ErrorContext, code?: ErrorCode): FerryError {
  const status = fault.code > 0 ? `HTTP ${fault.code}` : `error ${fault.code}`;
  const text = fault.message === "" ? "" : `: ${fault.message}`;
  return new FerryError(
    code ?? codeForFault(fault),
    `${where(context)}: ${status}${text}`,
    subjectOf(context),
  );
}

/** Thrown for an answer that is not a success: Moonraker's own code and words. */
export class MoonrakerCallError extends FerryError {
  readonly fault: MoonrakerFault;
  constructor(error: FerryError, fault: MoonrakerFault) {
    super(error.code, error.message, {
      retryable: error.retryable,
      ...(error.subject === undefined ? {} : { subject: error.subject }),
    });
    this.fault = fault;
  }
}

/** A status the caller did not expect, as Moonraker's fault. */
export function refusal(status: number, body: string, context: ErrorContext, code?: ErrorCode): FerryError {
  const fault = faultOf(status, body);
  return new MoonrakerCallError(faultError(fault, context, code), fault);
}
