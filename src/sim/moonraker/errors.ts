/**
 * Moonraker's errors as its server writes them (Tornado's `write_error`): HTTP
 * `{"error": {"code", "message", "traceback"}}` and JSON-RPC `{"error": {"code", "message"}}`.
 *
 * API endpoints raise their text as the HTTP reason, so `message` is the text. The file handlers
 * (upload, download, DELETE of a file) raise it as Tornado's log message instead: `message` is then
 * the bare reason phrase ("Forbidden") and the text shows only in the traceback's last line.
 */
import { STATUS_CODES } from "node:http";

export class MoonrakerError extends Error {
  override readonly name = "MoonrakerError";
  readonly status: number;
  /** "reason": the text is the HTTP reason (API endpoints); "log": the text is in the traceback only. */
  readonly style: "reason" | "log";

  constructor(status: number, text: string, style: "reason" | "log" = "reason") {
    super(text);
    this.status = status;
    this.style = style;
  }

  /** The HTTP reason phrase of the answer. */
  get reason(): string {
    return this.style === "reason" ? this.message : (STATUS_CODES[this.status] ?? "Unknown");
  }

  /** The HTTP error body. */
  body(): string {
    const phrase = STATUS_CODES[this.status] ?? "Unknown";
    const last =
      this.style === "reason"
        ? `tornado.web.HTTPError: HTTP ${this.status}: ${this.message}`
        : `tornado.web.HTTPError: HTTP ${this.status}: ${phrase} (${this.message})`;
    const traceback = `Traceback (most recent call last):\n  File "/home/pi/moonraker/moonraker/components/application.py", line 702, in _process_http_request\n    raise tornado.web.HTTPError(\n${last}\n`;
    return JSON.stringify({ error: { code: this.status, message: this.reason, traceback } });
  }

  /** The JSON-RPC error object: Moonraker turns 404 into -32601 and 401 into -32602. */
  rpc(): { code: number; message: string } {
    const code = this.status === 404 ? -32601 : this.status === 401 ? -32602 : this.status;
    return { code, message: this.message };
  }

  /** `error` as a Moonraker error: itself, or a 500 with its message. */
  static of(error: unknown): MoonrakerError {
    if (error instanceof MoonrakerError) return error;
    const status = (error as { status?: unknown }).status;
    const message = error instanceof Error ? error.message : String(error);
    return new MoonrakerError(typeof status === "number" ? status : 500, message);
  }
}
