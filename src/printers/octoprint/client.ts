/**
 * HTTP client for one OctoPrint server: keep-alive connections (one undici Agent per server, room
 * for several uploads at once), the API key in `X-Api-Key` on every request, status checks and
 * parsed JSON answers. The base URL may carry a path (OctoPrint behind a reverse proxy at /octoprint/).
 */
import { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import type { z } from "zod";
import { FerryError, isFerryError, throwIfAborted, type ErrorCode } from "../../core/errors.ts";
import { silentLogger, type Logger } from "../../core/logger.ts";
import type { MultipartBody } from "../../core/multipart.ts";
import type { Secret } from "../../core/secret.ts";
import { parseWire } from "./api-types.ts";
import { errorDetail, networkError, statusError, type ErrorContext } from "./errors.ts";

export interface OctoPrintClientOptions {
  /** Server base URL, e.g. http://octopi.local or https://farm.example/octoprint/ */
  url: string;
  /** Device name used in messages. */
  printer: string;
  apiKey: Secret;
  logger?: Logger;
  /** Connections kept to the server (default 6: uploads at once plus status polls). */
  connections?: number;
  /** Connect timeout (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Time to wait for response headers or between body chunks (default 30000 ms). */
  timeoutMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Ferry path the call is about (for messages). */
  subject?: string | undefined;
  /** What the call does, for messages (default "METHOD path"). */
  operation?: string | undefined;
  headers?: Record<string, string>;
}

export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
}

const MAX_JSON_BYTES = 64 * 1024 * 1024;

export class OctoPrintClient {
  readonly printer: string;
  readonly #origin: string;
  readonly #base: string;
  readonly #agent: Agent;
  readonly #apiKey: Secret;
  readonly #logger: Logger;
  #closed = false;

  constructor(options: OctoPrintClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new FerryError("PROTOCOL", `${options.printer}: url must be http(s), got ${options.url}`);
    }
    this.printer = options.printer;
    this.#origin = url.origin;
    this.#base = url.pathname.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#logger = options.logger ?? silentLogger;
    const timeoutMs = options.timeoutMs ?? 30_000;
    this.#agent = new Agent({
      connections: options.connections ?? 6,
      keepAliveTimeout: 4000,
      connect: { timeout: options.connectTimeoutMs ?? 5000 },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  context(method: string, path: string, options: CallOptions): ErrorContext {
    return {
      printer: this.printer,
      operation: options.operation ?? `${method} ${path}`,
      subject: options.subject,
    };
  }

  async #dispatch(
    method: string,
    path: string,
    options: CallOptions,
    body?: Dispatcher.DispatchOptions["body"],
  ): Promise<ClientResponse> {
    if (this.#closed) throw new FerryError("UNAVAILABLE", `${this.printer}: client closed`);
    throwIfAborted(options.signal);
    try {
      const res = await this.#agent.request({
        origin: this.#origin,
        path: this.#base + path,
        method,
        headers: { Accept: "application/json", ...options.headers, "X-Api-Key": this.#apiKey.reveal() },
        body: body ?? null,
        signal: options.signal ?? null,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw networkError(error, this.context(method, path, options), options.signal);
    }
  }

  /**
   * A request whose body can be sent again; a GET or HEAD that loses its kept-alive connection is
   * sent once more, since servers and proxies close idle connections at will.
   */
  async send(
    method: string,
    path: string,
    options: CallOptions = {},
    body?: string | Buffer,
  ): Promise<ClientResponse> {
    try {
      return await this.#dispatch(method, path, options, body);
    } catch (error) {
      const retry =
        (method === "GET" || method === "HEAD") &&
        isFerryError(error, "TRANSIENT") &&
        !options.signal?.aborted;
      if (!retry) throw error;
      this.#logger.debug(
        { printer: this.printer, err: error },
        "OctoPrint connection lost; sending the request again",
      );
      return this.#dispatch(method, path, options, body);
    }
  }

  /** Throws the FerryError for a status not in `ok` (reading OctoPrint's error text). */
  async check(
    res: ClientResponse,
    ok: readonly number[],
    context: ErrorContext,
    code?: ErrorCode,
  ): Promise<void> {
    if (ok.includes(res.status)) return;
    let detail = "";
    try {
      detail = errorDetail(await res.body.text());
    } catch {
      // the body is only for the message
    }
    if (res.status === 403 || res.status === 401)
      detail = `the API key is refused${detail === "" ? "" : ` (${detail})`}`;
    throw statusError(res.status, context, detail, code);
  }

  /** A bodiless request (or one with a JSON body) whose status is checked against `ok`. */
  async call(
    method: string,
    path: string,
    ok: readonly number[],
    options: CallOptions = {},
    json?: unknown,
  ): Promise<ClientResponse> {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const headers =
      json === undefined ? options.headers : { ...options.headers, "Content-Type": "application/json" };
    const res = await this.send(method, path, { ...options, ...(headers ? { headers } : {}) }, body);
    await this.check(res, ok, this.context(method, path, options));
    return res;
  }

  /** Reads a JSON answer and parses it with `schema`. */
  async json<T>(res: ClientResponse, schema: z.ZodType<T>, context: ErrorContext): Promise<T> {
    let text: string;
    try {
      if (Number(res.headers["content-length"] ?? "0") > MAX_JSON_BYTES) {
        throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply too large`);
      }
      text = await res.body.text();
    } catch (error) {
      throw networkError(error, context);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply is not JSON`, {
        cause: error,
        ...(context.subject === undefined ? {} : { subject: context.subject }),
      });
    }
    return parseWire(schema, value, `${context.printer}: ${context.operation}`, context.subject);
  }

  /** GET of a JSON resource, parsed with `schema`. */
  async getJson<T>(path: string, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T> {
    const res = await this.call("GET", path, [200], options);
    return this.json(res, schema, this.context("GET", path, options));
  }

  /**
   * POST of a multipart body around `source` with its exact Content-Length. The source must give
   * exactly the file's size; otherwise the request fails before the closing boundary goes out, so
   * the server never takes the file.
   */
  async upload(
    path: string,
    form: MultipartBody,
    source: Readable | AsyncIterable<Uint8Array>,
    options: CallOptions = {},
  ): Promise<ClientResponse> {
    const context = this.context("POST", path, options);
    const state: { mismatch: FerryError | undefined } = { mismatch: undefined };
    const chunks = form.chunks(source, (sent) => {
      const got = sent > form.size ? "more than" : `${sent} bytes instead of`;
      state.mismatch = new FerryError(
        "PROTOCOL",
        `${context.printer}: ${context.operation}: the source gave ${got} the ${form.size} bytes announced`,
        context.subject === undefined ? {} : { subject: context.subject },
      );
      return state.mismatch;
    });
    const headers = {
      ...options.headers,
      "Content-Type": form.contentType,
      "Content-Length": String(form.length),
    };
    let res: ClientResponse;
    try {
      res = await this.#dispatch(
        "POST",
        path,
        { ...options, headers },
        Readable.from(chunks, { objectMode: false }),
      );
    } catch (error) {
      throw state.mismatch ?? error;
    }
    if (state.mismatch) {
      await res.body.dump();
      throw state.mismatch;
    }
    return res;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.close();
  }
}
