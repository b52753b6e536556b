/**
 * Moonraker's JSON-RPC 2.0 websocket (`/websocket`), over the `ws` client: the API key in the
 * upgrade request's X-Api-Key, calls matched to their answers by id, notifications
 * (`notify_status_update`, `notify_klippy_ready`, …) handed to a listener, and one `closed`
 * promise that settles however the socket ends. A socket that drops fails every call still
 * waiting, so nothing hangs on a printer that went away.
 */
import WebSocket from "ws";
import { FerryError } from "../../core/errors.ts";
import type { Secret } from "../../core/secret.ts";
import type { ErrorContext } from "../http.ts";
import { faultError, type MoonrakerFault } from "./errors.ts";

export type NotificationListener = (method: string, params: unknown[]) => void;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  context: ErrorContext;
}

/** A JSON-RPC error answer, with Moonraker's code and words. */
export class RpcError extends FerryError {
  readonly fault: MoonrakerFault;
  constructor(fault: MoonrakerFault, context: ErrorContext) {
    const error = faultError(fault, context);
    super(error.code, error.message, { retryable: error.retryable });
    this.fault = fault;
  }
}

export interface OpenSocketOptions {
  printer: string;
  apiKey?: Secret | undefined;
  signal?: AbortSignal | undefined;
  /** Give up connecting after this long (default 5000 ms). */
  timeoutMs?: number;
}

export class MoonrakerSocket {
  readonly #ws: WebSocket;
  readonly #printer: string;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #listener: NotificationListener | undefined;
  /** Settles when the socket has closed, with why. */
  readonly closed: Promise<string>;

  private constructor(ws: WebSocket, printer: string) {
    this.#ws = ws;
    this.#printer = printer;
    this.closed = new Promise<string>((resolve) => {
      ws.on("close", (code, reason) => {
        const text = reason.toString("utf8");
        const why = `websocket closed (${code}${text === "" ? "" : ` ${text}`})`;
        for (const pending of this.#pending.values()) {
          pending.reject(
            new FerryError("UNAVAILABLE", `${this.#printer}: ${pending.context.operation}: ${why}`),
          );
        }
        this.#pending.clear();
        resolve(why);
      });
    });
    // After the handshake an error is always followed by `close`, which settles everything.
    ws.on("error", () => undefined);
    ws.on("message", (data, binary) => {
      // Text frames arrive as one Buffer (ws's default binaryType).
      if (!binary && Buffer.isBuffer(data)) this.#receive(data.toString("utf8"));
    });
  }

  /** Connects; UNAVAILABLE when nobody answers at `url`, AUTH when the upgrade is refused with 401/403. */
  static open(url: string, options: OpenSocketOptions): Promise<MoonrakerSocket> {
    const context = `${options.printer}: websocket ${url}`;
    return new Promise<MoonrakerSocket>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new FerryError("ABORTED", `${context}: aborted`));
        return;
      }
      const headers = options.apiKey ? { "X-Api-Key": options.apiKey.reveal() } : undefined;
      const ws = new WebSocket(url, {
        handshakeTimeout: options.timeoutMs ?? 5000,
        ...(headers ? { headers } : {}),
      });
      let settled = false;
      const fail = (error: FerryError) => {
        if (settled) return;
        settled = true;
        options.signal?.removeEventListener("abort", onAbort);
        ws.terminate();
        reject(error);
      };
      const onAbort = () => fail(new FerryError("ABORTED", `${context}: aborted`));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      ws.once("unexpected-response", (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        const code = status === 401 || status === 403 ? "AUTH" : status >= 500 ? "UNAVAILABLE" : "PROTOCOL";
        fail(new FerryError(code, `${context}: the upgrade was answered with HTTP ${status}`));
      });
      ws.once("error", (error) => fail(new FerryError("UNAVAILABLE", `${context}: ${error.message}`)));
      ws.once("open", () => {
        if (settled) return;
        settled = true;
        options.signal?.removeEventListener("abort", onAbort);
        resolve(new MoonrakerSocket(ws, options.printer));
      });
    });
  }

  /** The device name, for messages. */
  get printer(): string {
    return this.#printer;
  }

  /** Where notifications go (one listener; a later call replaces it). */
  onNotification(listener: NotificationListener): void {
    this.#listener = listener;
  }

  /** Calls a method; the answer's `result`, or an RpcError with Moonraker's code. */
  call(method: string, params?: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const context: ErrorContext = { printer: this.#printer, operation: method };
    if (this.#ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new FerryError("UNAVAILABLE", `${this.#printer}: ${method}: websocket not open`));
    }
    if (signal?.aborted)
      return Promise.reject(new FerryError("ABORTED", `${this.#printer}: ${method}: aborted`));
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(id);
        reject(new FerryError("ABORTED", `${this.#printer}: ${method}: aborted`));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (value) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(value);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
        context,
      });
      this.#ws.send(JSON.stringify({ jsonrpc: "2.0", method, ...(params ? { params } : {}), id }));
    });
  }

  #receive(data: string): void {
    let message: { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      return; // Moonraker sends JSON only; anything else is ignored rather than fatal
    }
    if (typeof message.method === "string") {
      this.#listener?.(message.method, Array.isArray(message.params) ? (message.params as unknown[]) : []);
      return;
    }
    if (typeof message.id !== "number") return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    const error = message.error as { code?: unknown; message?: unknown } | undefined;
    if (error && typeof error === "object") {
      const fault = {
        code: typeof error.code === "number" ? error.code : 0,
        message: typeof error.message === "string" ? error.message : "",
      };
      pending.reject(new RpcError(fault, pending.context));
    } else {
      pending.resolve(message.result);
    }
  }

  /** Drops the socket at once (no closing handshake to wait for); `closed` settles. */
  close(): void {
    this.#ws.terminate();
  }
}
