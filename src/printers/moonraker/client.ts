/**
 * HTTP client for one Moonraker server: keep-alive connections (one undici Agent per printer), the
 * optional X-Api-Key, `{result}` unwrapping, Moonraker's error bodies, the multipart upload with a
 * SHA-256 checksum worked out while the file streams, and ranged downloads.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import type { z } from "zod";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import type { Secret } from "../../core/secret.ts";
import { parseWire } from "./api-types.ts";
import { faultError, faultOf, networkError, type ErrorContext, type MoonrakerFault } from "./errors.ts";

export interface MoonrakerClientOptions {
  /** Moonraker's base URL, e.g. http://192.168.1.30:7125 */
  url: string;
  /** Device name used in messages. */
  printer: string;
  apiKey?: Secret;
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
  /** Query arguments. */
  query?: Record<string, string>;
  /** A JSON body (Moonraker takes arguments from the body or the query). */
  json?: unknown;
  headers?: Record<string, string>;
}

export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
}

/** Thrown by `call` for an answer that is not a success: Moonraker's own code and words. */
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

const MAX_JSON_BYTES = 64 * 1024 * 1024;

export interface UploadTarget {
  /** Folder under the gcodes root ("" for the root itself); Moonraker creates it when missing. */
  dir: string;
  /** The file's name. */
  name: string;
  size: number;
}

/** A form field part of a multipart body. */
function fieldPart(boundary: string, name: string, value: string): string {
  return `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}

export class MoonrakerClient {
  readonly printer: string;
  readonly #origin: string;
  readonly #base: string;
  readonly #agent: Agent;
  readonly #apiKey: Secret | undefined;
  #closed = false;

  constructor(options: MoonrakerClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new FerryError("PROTOCOL", `${options.printer}: url must be http(s), got ${options.url}`);
    }
    this.printer = options.printer;
    this.#origin = url.origin;
    this.#base = url.pathname.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    const timeout = options.timeoutMs ?? 30_000;
    this.#agent = new Agent({
      connections: 8,
      keepAliveTimeout: 4000,
      connect: { timeout: options.connectTimeoutMs ?? 5000 },
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  /** ws:// (or wss://) URL of Moonraker's JSON-RPC websocket. */
  get websocketUrl(): string {
    return `${this.#origin.replace(/^http/, "ws")}${this.#base}/websocket`;
  }

  /** The API key, for the websocket's `server.connection.identify`. */
  get apiKey(): Secret | undefined {
    return this.#apiKey;
  }

  context(operation: string, subject?: string): ErrorContext {
    return { printer: this.printer, operation, ...(subject === undefined ? {} : { subject }) };
  }

  #contextOf(method: string, path: string, options: CallOptions): ErrorContext {
    return this.context(options.operation ?? `${method} ${path}`, options.subject);
  }

  #target(path: string, query: Record<string, string> | undefined): string {
    const search = query === undefined ? "" : new URLSearchParams(query).toString();
    return this.#base + path + (search === "" ? "" : `?${search}`);
  }

  /** Sends a request and returns the response, whatever its status. */
  async send(
    method: string,
    path: string,
    options: CallOptions = {},
    body?: Dispatcher.DispatchOptions["body"],
  ): Promise<ClientResponse> {
    const context = this.#contextOf(method, path, options);
    if (this.#closed) throw new FerryError("UNAVAILABLE", `${this.printer}: client closed`);
    throwIfAborted(options.signal);
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    if (this.#apiKey) headers["X-Api-Key"] = this.#apiKey.reveal();
    let payload = body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(options.json);
    }
    try {
      const res = await this.#agent.request({
        origin: this.#origin,
        path: this.#target(path, options.query),
        method,
        headers,
        body: payload ?? null,
        signal: options.signal ?? null,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw networkError(error, context, options.signal);
    }
  }

  /** Throws the FerryError of a status not in `ok`, with Moonraker's text. */
  async check(res: ClientResponse, ok: readonly number[], context: ErrorContext): Promise<void> {
    if (ok.includes(res.status)) return;
    let text = "";
    try {
      text = await res.body.text();
    } catch {
      // the body is only for the message
    }
    const fault = faultOf(res.status, text);
    throw new MoonrakerCallError(faultError(fault, context), fault);
  }

  /** Like `send`, then checks the status. */
  async call(
    method: string,
    path: string,
    ok: readonly number[],
    options: CallOptions = {},
  ): Promise<ClientResponse> {
    const res = await this.send(method, path, options);
    await this.check(res, ok, this.#contextOf(method, path, options));
    return res;
  }

  /** Reads a JSON answer: the `result` of a wrapped one, or the whole (uploads answer unwrapped). */
  async json(res: ClientResponse, context: ErrorContext, signal?: AbortSignal): Promise<unknown> {
    let text: string;
    try {
      if (Number(res.headers["content-length"] ?? "0") > MAX_JSON_BYTES)
        throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply too large`);
      text = await res.body.text();
    } catch (error) {
      throw networkError(error, context, signal);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply is not JSON`, {
        cause: error,
        ...(context.subject === undefined ? {} : { subject: context.subject }),
      });
    }
    if (json !== null && typeof json === "object" && "result" in json) return json.result;
    return json;
  }

  /** A request whose answer is JSON, parsed with `schema`. */
  async result<T>(method: string, path: string, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T> {
    const context = this.#contextOf(method, path, options);
    const res = await this.call(method, path, [200, 201], options);
    const json = await this.json(res, context, options.signal);
    return parseWire(schema, json, `${context.printer}: ${context.operation}`, options.subject);
  }

  /**
   * Uploads a file to the gcodes root as Moonraker's upload form: `root`, `path` and the file, then
   * the SHA-256 of the bytes that went out as `checksum` (Moonraker checks it once the body is in,
   * so it may come last: the file is read once). A source that gives more or fewer than `size`
   * bytes fails before the closing boundary, so Moonraker stores nothing.
   */
  async upload(
    target: UploadTarget,
    source: Readable | AsyncIterable<Uint8Array>,
    options: CallOptions = {},
  ): Promise<ClientResponse> {
    const context = this.#contextOf("POST", "/server/files/upload", options);
    const boundary = `----FerryMoonraker${randomBytes(12).toString("hex")}`;
    const head =
      fieldPart(boundary, "root", "gcodes") +
      (target.dir === "" ? "" : fieldPart(boundary, "path", target.dir)) +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${target.name}"\r\n` +
      "Content-Type: application/octet-stream\r\n\r\n";
    const checksumPart = (digest: string) =>
      `\r\n${fieldPart(boundary, "checksum", digest)}--${boundary}--\r\n`;
    const headBytes = Buffer.from(head, "utf8");
    const tailLength = Buffer.byteLength(checksumPart("0".repeat(64)));
    const state: { failure: unknown } = { failure: undefined };
    async function* body(): AsyncGenerator<Uint8Array> {
      yield headBytes;
      const hash = createHash("sha256");
      let sent = 0;
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        sent += chunk.length;
        if (sent > target.size) break;
        hash.update(chunk);
        yield chunk;
      }
      if (sent !== target.size) {
        const got = sent > target.size ? "more than" : `${sent} bytes instead of`;
        state.failure = new FerryError(
          "PROTOCOL",
          `${context.printer}: ${context.operation}: the source gave ${got} the ${target.size} bytes announced`,
          { ...(context.subject === undefined ? {} : { subject: context.subject }), retryable: true },
        );
        throw state.failure;
      }
      yield Buffer.from(checksumPart(hash.digest("hex")), "utf8");
    }
    const headers = {
      ...options.headers,
      "Content-Type": `multipart/form-data; boundary=${boundary}`,
      "Content-Length": String(headBytes.length + target.size + tailLength),
    };
    let res: ClientResponse;
    try {
      res = await this.send("POST", "/server/files/upload", { ...options, headers }, Readable.from(body()));
    } catch (error) {
      throw state.failure ?? (source instanceof Readable && source.errored ? source.errored : error);
    }
    await this.check(res, [201], context);
    return res;
  }

  /** The bytes of a file of `root` from `offset` (Moonraker serves ranges). */
  async download(root: string, path: string, offset: number, options: CallOptions = {}): Promise<Readable> {
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    const headers = offset > 0 ? { Range: `bytes=${offset}-` } : undefined;
    const res = await this.call("GET", `/server/files/${root}/${encoded}`, offset > 0 ? [206, 416] : [200], {
      ...options,
      ...(headers === undefined ? {} : { headers }),
    });
    // 416: the offset is the file's end (Moonraker refuses an empty range); nothing is left to read.
    if (res.status === 416) {
      await res.body.dump();
      return Readable.from([]);
    }
    return res.body;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.close();
  }
}
