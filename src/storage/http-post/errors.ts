/**
 * A web form's answers and network failures as FerryErrors. Messages name the device, the file and
 * what the site said (the first line of its page's text), never a password.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { codeKind, errorCodes, networkFailure } from "../../core/net-errors.ts";

export interface ErrorContext {
  /** Device name from ferry.yaml. */
  device: string;
  /** Ferry path of the file being uploaded. */
  subject: string;
}

/**
 * 502/503/504 mean the site (or the application behind its proxy) is away: UNAVAILABLE, so the
 * engine waits for it without spending attempts. 500 may be this file's fault: TRANSIENT, retried
 * a few times, then given up.
 */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return "AUTH";
  if (status === 413 || status === 507) return "NO_SPACE";
  if (status === 429) return "BUSY";
  if (status === 502 || status === 503 || status === 504) return "UNAVAILABLE";
  if (status === 408 || status >= 500) return "TRANSIENT";
  return "PROTOCOL";
}

const MAX_DETAIL = 200;
const STATUS_LINE = /^(error:?\s*)?\d{3}(:?\s+[A-Za-z][A-Za-z -]*)?$/i;

/** The first line of what a page says: its text without tags (HTML), else its first line. */
export function firstLine(body: string, contentType: string | undefined): string {
  let text = body;
  if (/html/i.test(contentType ?? "") || /^\s*<(!doctype|html)/i.test(body)) {
    // A page that marks its message (class="error", "alert alert-danger") says it there.
    const marked =
      /<([a-z][a-z0-9]*)\b[^>]*\bclass="[^"]*\b(?:error|alert|danger)\b[^"]*"[^>]*>([\s\S]*?)<\/\1>/i.exec(
        body,
      );
    const inBody = marked?.[2] ?? /<body[^>]*>([\s\S]*?)(?:<\/body>|$)/i.exec(body)?.[1] ?? body;
    text = inBody
      .replace(/<(script|style|head)\b[\s\S]*?<\/\1>/gi, "")
      .replace(/<\/?(p|div|h[1-6]|br|li|tr|pre|title)\b[^>]*>/gi, "\n")
      .replace(/<[^>]*>/g, "")
      .replace(/&#(\d+);/g, (_m, code: string) => String.fromCodePoint(Number(code)))
      .replace(/&(amp|lt|gt|quot|apos|nbsp);/g, (_m, name: string) => ENTITIES[name] ?? "");
  }
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/\s+/g, " ").trim())
    .filter((l) => l !== "");
  let line = lines[0] ?? "";
  // "400 Bad Request" or "Error 400" only repeats the status: the reason is on the next line.
  if (STATUS_LINE.test(line) && lines[1] !== undefined) line = `${line}: ${lines[1]}`;
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL)}…` : line;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

export function statusError(status: number, context: ErrorContext, detail: string): FerryError {
  const code = codeForStatus(status);
  const hint =
    code === "AUTH"
      ? " (check username and password)"
      : code === "NO_SPACE"
        ? " (the site refuses a file this big)"
        : "";
  const said = detail === "" ? "" : `: ${detail}`;
  return new FerryError(
    code,
    `${context.device}: upload of ${context.subject}: HTTP ${status}${said}${hint}`,
    {
      subject: context.subject,
    },
  );
}

/**
 * Any TLS failure, not only a certificate one (a wrong protocol version, https:// on a plain port):
 * a human must act either way.
 */
function isTlsFailure(code: string): boolean {
  return codeKind(code) === "untrusted" || /^ERR_(?:TLS|SSL)_/.test(code);
}

/**
 * A failure below HTTP: refused or unreachable → UNAVAILABLE; reset or timed out mid-way →
 * TRANSIENT; a certificate that does not check out → AUTH (a human must act: ca_file).
 */
export function networkError(error: unknown, context: ErrorContext, signal?: AbortSignal): FerryError {
  if (error instanceof FerryError) return error;
  const where = `${context.device}: upload of ${context.subject}`;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, subject: context.subject };
  if (signal?.aborted || (error instanceof Error && error.name === "AbortError")) {
    return new FerryError("ABORTED", `${where}: aborted`, options);
  }
  const codes = errorCodes(error);
  const failure = networkFailure(error)?.kind;
  if (failure === "unreachable") {
    return new FerryError("UNAVAILABLE", `${where}: site unreachable (${codes.join(", ")})`, options);
  }
  if (codes.some(isTlsFailure)) {
    return new FerryError("AUTH", `${where}: TLS certificate not trusted (${message}); set ca_file`, options);
  }
  // ETIMEDOUT too: undici times out connects itself (UND_ERR_CONNECT_TIMEOUT, unreachable), so the
  // OS's timeout comes from a post already under way: a lost connection, retried a few times.
  if (failure === "interrupted" || failure === "timed-out") {
    return new FerryError("TRANSIENT", `${where}: connection lost (${message})`, options);
  }
  return new FerryError("TRANSIENT", `${where}: ${message}`, options);
}
