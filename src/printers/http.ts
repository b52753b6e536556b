/**
 * The HTTP client each printer vendor's client extends: one undici Agent per printer (keep-alive,
 * connect and response timeouts), the base URL (which may carry a path, for a device behind a
 * reverse proxy), the credentials' headers on every request, the caller's AbortSignal, JSON bodies
 * and answers (read within a size bound), and one mapping of network failures to FerryErrors. What
 * a vendor's answers mean (its statuses, error bodies, authentication handshake) stays in its folder.
 */
import { Agent, type Dispatcher } from "undici";
import { FerryError, isFerryError, throwIfAborted, type ErrorCode } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { errorCodes, networkFailure } from "../core/net-errors.ts";

export interface ErrorContext {
  /** Device name from ferry.yaml. */
  printer: string;
  /** What was attempted, e.g. "upload" or "GET /api/job". */
  operation: string;
  /** Ferry path the request was about, when there is one. */
  subject?: string | undefined;
}

/** "printer: operation subject", the head of every message. */
export function where(context: ErrorContext): string {
  return `${context.printer}: ${context.operation}${context.subject === undefined ? "" : ` ${context.subject}`}`;
}

export function subjectOf(context: ErrorContext): { subject?: string } {
  return context.subject === undefined ? {} : { subject: context.subject };
}

/** What an HTTP status means to Ferry where a device uses it as HTTP does. */
const HTTP_STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: "PROTOCOL",
  401: "AUTH",
  403: "AUTH",
  404: "NOT_FOUND",
  405: "UNSUPPORTED",
  408: "TRANSIENT",
  409: "BUSY",
  411: "PROTOCOL",
  413: "NO_SPACE",
  // A file the device does not take: retrying will not change its mind.
  415: "UNSUPPORTED",
  429: "BUSY",
  500: "TRANSIENT",
  501: "UNSUPPORTED",
  503: "UNAVAILABLE",
  504: "TRANSIENT",
  507: "NO_SPACE",
};

/**
 * A vendor's reading of HTTP statuses: its own entries, else HTTP_STATUS_CODES, else TRANSIENT for
 * a 5xx and PROTOCOL for the rest.
 */
export function statusCodes(own: Readonly<Record<number, ErrorCode>>): (status: number) => ErrorCode {
  const table = { ...HTTP_STATUS_CODES, ...own };
  return (status) => table[status] ?? (status >= 500 ? "TRANSIENT" : "PROTOCOL");
}

/** An unexpected HTTP status as a FerryError: "printer: operation subject: HTTP 409: the device's words". */
export function httpError(
  status: number,
  context: ErrorContext,
  detail: string,
  code: ErrorCode,
): FerryError {
  return new FerryError(
    code,
    `${where(context)}: HTTP ${status}${detail === "" ? "" : `: ${detail}`}`,
    subjectOf(context),
  );
}

/** How a vendor words what `networkError` cannot decide for it. */
export interface NetworkTerms {
  /** What is away when nobody answers, in "<host> unreachable": "printer", "OctoPrint". */
  host: string;
  /** The code and words for a TLS certificate that does not check out; left out, it is TRANSIENT. */
  untrusted?: { code: ErrorCode; text: string };
}

/**
 * A failure below HTTP: refused, unreachable or fallen silent → UNAVAILABLE (a printer that stops
 * answering has almost always been switched off or left the network: waiting beats spending
 * attempts); reset mid-way → TRANSIENT; a body that does not match its Content-Length → PROTOCOL.
 */
export function networkError(
  error: unknown,
  context: ErrorContext,
  terms: NetworkTerms,
  signal?: AbortSignal,
): FerryError {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, ...subjectOf(context) };
  if (signal?.aborted || (error instanceof Error && error.name === "AbortError")) {
    return new FerryError("ABORTED", `${where(context)}: aborted`, options);
  }
  const codes = errorCodes(error);
  const failure = networkFailure(error)?.kind;
  if (failure === "unreachable" || failure === "timed-out") {
    return new FerryError(
      "UNAVAILABLE",
      `${where(context)}: ${terms.host} unreachable (${codes.join(", ")})`,
      options,
    );
  }
  if (failure === "interrupted") {
    return new FerryError("TRANSIENT", `${where(context)}: connection lost (${message})`, options);
  }
  if (failure === "untrusted" && terms.untrusted) {
    const { code, text } = terms.untrusted;
    return new FerryError(code, `${where(context)}: ${text} (${message})`, { ...options, retryable: false });
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

/** Where the printer is and how patient to be with it: the options every vendor's client takes. */
export interface HttpTarget {
  /** Base URL, e.g. http://192.168.1.20 or https://farm.example/octoprint/ */
  url: string;
  /** Device name used in messages. */
  printer: string;
  /** Connect timeout (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Time to wait for response headers or between body chunks (default 30000 ms). */
  timeoutMs?: number;
}

/** What a vendor's client tells the HttpClient it extends. */
export interface HttpVendor {
  /** Connections kept to the printer. */
  connections: number;
  terms: NetworkTerms;
  /** The FerryError for a status the caller did not expect; `code` overrides the vendor's mapping. */
  refusal(status: number, body: string, context: ErrorContext, code?: ErrorCode): FerryError;
  /** The credentials' headers for a request (`target` is the path sent, base and query included). */
  auth?(method: string, target: string): Record<string, string>;
  /** The largest JSON answer read. */
  maxJsonBytes: number;
  /** Given: `send` sends a GET or HEAD that lost its kept-alive connection once more, and says so. */
  resend?: { vendor: string; logger: Logger };
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Ferry path the call is about (for messages). */
  subject?: string | undefined;
  /** What the call does, for messages (default "METHOD path"). */
  operation?: string | undefined;
  headers?: Record<string, string>;
  /** Query arguments. */
  query?: Record<string, string>;
  /** A JSON body (sent with its Content-Type). */
  json?: unknown;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
}

export type RequestBody = Dispatcher.DispatchOptions["body"];

export class HttpClient {
  readonly printer: string;
  /** scheme://host:port of the base URL. */
  readonly origin: string;
  /** The base URL's path without its trailing slash ("" for none). */
  readonly base: string;
  readonly #vendor: HttpVendor;
  readonly #agent: Agent;
  #closed = false;

  constructor(target: HttpTarget, vendor: HttpVendor) {
    const url = new URL(target.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new FerryError("PROTOCOL", `${target.printer}: url must be http(s), got ${target.url}`);
    }
    this.printer = target.printer;
    this.origin = url.origin;
    this.base = url.pathname.replace(/\/+$/, "");
    this.#vendor = vendor;
    const timeout = target.timeoutMs ?? 30_000;
    this.#agent = new Agent({
      connections: vendor.connections,
      keepAliveTimeout: 4000,
      connect: { timeout: target.connectTimeoutMs ?? 5000 },
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  context(method: string, path: string, options: CallOptions): ErrorContext {
    return {
      printer: this.printer,
      operation: options.operation ?? `${method} ${path}`,
      ...(options.subject === undefined ? {} : { subject: options.subject }),
    };
  }

  /** Sends one request (`path` below the base URL) and returns the response, whatever its status. */
  async request(
    method: string,
    path: string,
    options: CallOptions = {},
    body?: RequestBody,
  ): Promise<HttpResponse> {
    if (this.#closed) throw new FerryError("UNAVAILABLE", `${this.printer}: client closed`);
    throwIfAborted(options.signal);
    const search = options.query === undefined ? "" : new URLSearchParams(options.query).toString();
    const target = this.base + path + (search === "" ? "" : `?${search}`);
    const json = options.json === undefined ? {} : { "Content-Type": "application/json" };
    try {
      const res = await this.#agent.request({
        origin: this.origin,
        path: target,
        method,
        headers: {
          Accept: "application/json",
          ...options.headers,
          ...json,
          ...this.#vendor.auth?.(method, target),
        },
        body: (options.json === undefined ? body : JSON.stringify(options.json)) ?? null,
        signal: options.signal ?? null,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw networkError(error, this.context(method, path, options), this.#vendor.terms, options.signal);
    }
  }

  /**
   * Like `request`; for a vendor that asks it, a GET or HEAD that loses its kept-alive connection is
   * sent once more, since devices and proxies close idle connections at will.
   */
  async send(
    method: string,
    path: string,
    options: CallOptions = {},
    body?: RequestBody,
  ): Promise<HttpResponse> {
    try {
      return await this.request(method, path, options, body);
    } catch (error) {
      const { resend } = this.#vendor;
      const retry =
        resend !== undefined &&
        (method === "GET" || method === "HEAD") &&
        isFerryError(error, "TRANSIENT") &&
        !options.signal?.aborted;
      if (!retry) throw error;
      resend.logger.debug(
        { printer: this.printer, err: error },
        `${resend.vendor} connection lost; sending the request again`,
      );
      return this.request(method, path, options, body);
    }
  }

  /** Throws the vendor's FerryError for a status not in `ok` (with the device's words). */
  async check(
    res: HttpResponse,
    ok: readonly number[],
    context: ErrorContext,
    code?: ErrorCode,
  ): Promise<void> {
    if (ok.includes(res.status)) return;
    let text = "";
    try {
      text = await res.body.text();
    } catch {
      // the body is only for the message
    }
    throw this.#vendor.refusal(res.status, text, context, code);
  }

  /** Like `send`, then checks the status against `ok`. */
  async call(
    method: string,
    path: string,
    ok: readonly number[],
    options: CallOptions = {},
  ): Promise<HttpResponse> {
    const res = await this.send(method, path, options);
    await this.check(res, ok, this.context(method, path, options));
    return res;
  }

  /** Reads a JSON answer (PROTOCOL when it is too large or not JSON). */
  async readJson(res: HttpResponse, context: ErrorContext, signal?: AbortSignal): Promise<unknown> {
    let text: string;
    try {
      if (Number(res.headers["content-length"] ?? "0") > this.#vendor.maxJsonBytes)
        throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply too large`);
      text = await res.body.text();
    } catch (error) {
      throw networkError(error, context, this.#vendor.terms, signal);
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply is not JSON`, {
        cause: error,
        ...subjectOf(context),
      });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.close();
  }
}
