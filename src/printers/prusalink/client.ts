/**
 * HTTP client for one PrusaLink printer: keep-alive connections (one undici Agent per printer),
 * authentication by Digest or X-Api-Key (never both), status checks and response parsing.
 *
 * PrusaLink's Digest has no `qop` and nonces that live about five seconds. The client keeps the
 * last nonce and sends Authorization preemptively; a 401 with `stale=true` is retried once with
 * the new nonce. An upload's body cannot be replayed, so before a PUT the client fetches a fresh
 * nonce when its own is older than `nonceRefreshMs` (and halves that bound whenever a younger
 * nonce turns out stale). If an upload is still refused as stale, the error is TRANSIENT.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import type { z } from "zod";
import { FerryError, isFerryError, throwIfAborted } from "../../core/errors.ts";
import { silentLogger, type Logger } from "../../core/logger.ts";
import type { Secret } from "../../core/secret.ts";
import { parseWire } from "./api-types.ts";
import { errorDetail, networkError, statusError, type ErrorContext } from "./errors.ts";

export interface PrusaLinkClientOptions {
  /** Printer base URL, e.g. http://192.168.1.20 */
  url: string;
  /** Device name used in messages. */
  printer: string;
  username?: string;
  password?: Secret;
  apiKey?: Secret;
  logger?: Logger;
  /** ms clock for nonce ages (default Date.now). */
  clock?: () => number;
  /** Refresh the nonce before an upload when it is older than this (default 2000 ms). */
  nonceRefreshMs?: number;
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

interface Nonce {
  realm: string;
  nonce: string;
  opaque: string | undefined;
  receivedAt: number;
}

const md5 = (text: string) => createHash("md5").update(text).digest("hex");
const quote = (value: string) => `"${value.replace(/["\\]/g, "\\$&")}"`;
const MAX_JSON_BYTES = 32 * 1024 * 1024;

/** The parameters of a `WWW-Authenticate: Digest …` challenge. */
export function parseChallenge(header: string | string[] | undefined): Map<string, string> | undefined {
  const value = Array.isArray(header) ? header.find((h) => /^\s*digest\s/i.test(h)) : header;
  if (value === undefined || !/^\s*digest\s/i.test(value)) return undefined;
  const params = new Map<string, string>();
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (const m of value.replace(/^\s*digest\s+/i, "").matchAll(re)) {
    params.set((m[1] ?? "").toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? ""));
  }
  return params;
}

/**
 * Passes `source` through, failing when it yields more or fewer than `size` bytes. A failure of
 * the source itself (or of its size) is kept in `failure`, so the upload reports it rather than
 * the aborted request it causes.
 */
function exactly(source: Readable | AsyncIterable<Uint8Array>, size: number, context: ErrorContext) {
  const state: { failure: unknown } = { failure: undefined };
  const fail = (error: unknown): never => {
    state.failure = error;
    throw error;
  };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    let sent = 0;
    let drained = false;
    try {
      for (;;) {
        // Only failures of the source are recorded; an error thrown in at `yield` (the request
        // being aborted) is the request's own.
        let step: IteratorResult<Uint8Array>;
        try {
          step = await iterator.next();
        } catch (error) {
          drained = true;
          return fail(error);
        }
        if (step.done === true) {
          drained = true;
          break;
        }
        sent += step.value.length;
        if (sent > size) break;
        yield step.value;
      }
    } finally {
      if (!drained) await iterator.return?.();
    }
    if (sent !== size) {
      const where = `${context.printer}: ${context.operation}${context.subject === undefined ? "" : ` ${context.subject}`}`;
      const got = sent > size ? "more than" : `${sent} bytes instead of`;
      fail(
        new FerryError("PROTOCOL", `${where}: the source gave ${got} the ${size} bytes announced`, {
          ...(context.subject === undefined ? {} : { subject: context.subject }),
        }),
      );
    }
  }
  return { state, chunks: chunks() };
}

export class PrusaLinkClient {
  readonly printer: string;
  readonly #origin: string;
  readonly #base: string;
  readonly #agent: Agent;
  readonly #username: string | undefined;
  readonly #password: Secret | undefined;
  readonly #apiKey: Secret | undefined;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #timeoutMs: number;
  #refreshAfterMs: number;
  #nonce: Nonce | undefined;
  #closed = false;

  constructor(options: PrusaLinkClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new FerryError("PROTOCOL", `${options.printer}: url must be http(s), got ${options.url}`);
    }
    if (options.apiKey && options.password) {
      throw new FerryError("PROTOCOL", `${options.printer}: give either a password or an API key, not both`);
    }
    this.printer = options.printer;
    this.#origin = url.origin;
    this.#base = url.pathname.replace(/\/+$/, "");
    this.#username = options.username;
    this.#password = options.password;
    this.#apiKey = options.apiKey;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? Date.now;
    this.#refreshAfterMs = options.nonceRefreshMs ?? 2000;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#agent = new Agent({
      connections: 4,
      keepAliveTimeout: 4000,
      connect: { timeout: options.connectTimeoutMs ?? 5000 },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  #context(method: string, path: string, options: CallOptions): ErrorContext {
    return {
      printer: this.printer,
      operation: options.operation ?? `${method} ${path}`,
      ...(options.subject === undefined ? {} : { subject: options.subject }),
    };
  }

  #authorization(method: string, target: string): Record<string, string> {
    if (this.#apiKey) return { "X-Api-Key": this.#apiKey.reveal() };
    const nonce = this.#nonce;
    if (!nonce || !this.#password) return {};
    const user = this.#username ?? "maker";
    const ha1 = md5(`${user}:${nonce.realm}:${this.#password.reveal()}`);
    const response = md5(`${ha1}:${nonce.nonce}:${md5(`${method}:${target}`)}`);
    const parts = [
      `username=${quote(user)}`,
      `realm=${quote(nonce.realm)}`,
      `nonce=${quote(nonce.nonce)}`,
      `uri=${quote(target)}`,
      `response=${quote(response)}`,
    ];
    if (nonce.opaque !== undefined) parts.push(`opaque=${quote(nonce.opaque)}`);
    return { Authorization: `Digest ${parts.join(", ")}` };
  }

  /** Takes the nonce of a challenge; returns whether it said `stale=true`. */
  #takeChallenge(challenge: Map<string, string>): boolean {
    const stale = (challenge.get("stale") ?? "").toLowerCase() === "true";
    const previous = this.#nonce;
    const now = this.#clock();
    if (stale && previous) {
      const age = now - previous.receivedAt;
      // The printer's nonces live shorter than we assumed: refresh earlier from now on.
      if (age < this.#refreshAfterMs * 2)
        this.#refreshAfterMs = Math.max(100, Math.min(this.#refreshAfterMs, age / 2));
    }
    this.#nonce = {
      realm: challenge.get("realm") ?? "",
      nonce: challenge.get("nonce") ?? "",
      opaque: challenge.get("opaque"),
      receivedAt: now,
    };
    return stale;
  }

  async #dispatch(
    method: string,
    target: string,
    options: CallOptions,
    body?: Dispatcher.DispatchOptions["body"],
  ): Promise<ClientResponse> {
    if (this.#closed) throw new FerryError("UNAVAILABLE", `${this.printer}: client closed`);
    throwIfAborted(options.signal);
    try {
      const res = await this.#agent.request({
        origin: this.#origin,
        path: target,
        method,
        headers: { Accept: "application/json", ...options.headers, ...this.#authorization(method, target) },
        body: body ?? null,
        signal: options.signal ?? null,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw networkError(error, this.#context(method, target, options), options.signal);
    }
  }

  /**
   * A bodiless request; a GET or HEAD that loses its (kept-alive) connection is sent once more, since
   * printers close idle connections at will.
   */
  async #dispatchOnce(method: string, target: string, options: CallOptions): Promise<ClientResponse> {
    try {
      return await this.#dispatch(method, target, options);
    } catch (error) {
      const retry =
        (method === "GET" || method === "HEAD") &&
        isFerryError(error, "TRANSIENT") &&
        !options.signal?.aborted;
      if (!retry) throw error;
      this.#logger.debug(
        { printer: this.printer, err: error },
        "PrusaLink connection lost; sending the request again",
      );
      return this.#dispatch(method, target, options);
    }
  }

  /**
   * Sends a bodiless request and returns the response, whatever its status (after the Digest
   * handshake). `path` is the API path, e.g. "/api/v1/status".
   */
  async send(method: string, path: string, options: CallOptions = {}): Promise<ClientResponse> {
    const target = this.#base + path;
    for (let attempt = 0; ; attempt++) {
      const res = await this.#dispatchOnce(method, target, options);
      if (res.status !== 401 || this.#apiKey) return res;
      const challenge = parseChallenge(res.headers["www-authenticate"]);
      await res.body.dump();
      if (!challenge) return res;
      const stale = this.#takeChallenge(challenge);
      if (attempt > 0) return res;
      this.#logger.debug(
        { printer: this.printer, stale },
        "PrusaLink digest challenge; retrying with the new nonce",
      );
    }
  }

  /** Like `send`, then checks the status (anything not in `ok` throws the mapped FerryError). */
  async call(
    method: string,
    path: string,
    ok: readonly number[],
    options: CallOptions = {},
  ): Promise<ClientResponse> {
    const res = await this.send(method, path, options);
    await this.check(res, ok, this.#context(method, path, options));
    return res;
  }

  /** Throws the FerryError for a status not in `ok` (reading the device's error text). */
  async check(res: ClientResponse, ok: readonly number[], context: ErrorContext): Promise<void> {
    if (ok.includes(res.status)) return;
    let detail = "";
    try {
      detail = errorDetail(await res.body.text());
    } catch {
      // the body is only for the message
    }
    if (detail === "" && res.status === 401)
      detail = "authentication failed: check the user name and password (or api_key)";
    throw statusError(res.status, context, detail);
  }

  /** GET of a JSON resource, parsed with `schema`; undefined for 204 No Content. */
  async getJson<T>(path: string, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T | undefined> {
    const context = this.#context("GET", path, options);
    const res = await this.call("GET", path, [200, 204], options);
    if (res.status === 204) {
      await res.body.dump();
      return undefined;
    }
    let text: string;
    try {
      const length = Number(res.headers["content-length"] ?? "0");
      if (length > MAX_JSON_BYTES)
        throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply too large`);
      text = await res.body.text();
    } catch (error) {
      throw networkError(error, context, options.signal);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new FerryError("PROTOCOL", `${context.printer}: ${context.operation}: reply is not JSON`, {
        cause: error,
        ...(options.subject === undefined ? {} : { subject: options.subject }),
      });
    }
    return parseWire(schema, json, `${context.printer}: ${context.operation}`, options.subject);
  }

  /** Makes sure the nonce is young enough to carry a request whose body cannot be replayed. */
  async #freshNonce(options: CallOptions): Promise<void> {
    if (this.#apiKey || !this.#password) return;
    const nonce = this.#nonce;
    if (nonce && this.#clock() - nonce.receivedAt < this.#refreshAfterMs) return;
    // A request without credentials is the one way to be handed a new nonce.
    const target = `${this.#base}/api/version`;
    const saved = this.#nonce;
    this.#nonce = undefined;
    const res = await this.#dispatch("GET", target, { ...options, operation: "nonce refresh" });
    await res.body.dump();
    const challenge = res.status === 401 ? parseChallenge(res.headers["www-authenticate"]) : undefined;
    if (challenge) this.#takeChallenge(challenge);
    else this.#nonce = saved;
  }

  /**
   * PUT of a body of exactly `size` bytes with an explicit Content-Length. Returns the response
   * after its status was checked against `ok`.
   */
  async upload(
    path: string,
    body: Readable | AsyncIterable<Uint8Array>,
    size: number,
    ok: readonly number[],
    options: CallOptions = {},
  ): Promise<ClientResponse> {
    await this.#freshNonce(options);
    const target = this.#base + path;
    const context = this.#context("PUT", path, options);
    const headers = {
      ...options.headers,
      "Content-Length": String(size),
      "Content-Type": "application/octet-stream",
    };
    const counted = exactly(body, size, context);
    let res: ClientResponse;
    try {
      res = await this.#dispatch(
        "PUT",
        target,
        { ...options, headers },
        Readable.from(counted.chunks, { objectMode: false }),
      );
    } catch (error) {
      throw counted.state.failure ?? error;
    }
    if (res.status === 401 && !this.#apiKey) {
      const challenge = parseChallenge(res.headers["www-authenticate"]);
      await res.body.dump();
      if (challenge && this.#takeChallenge(challenge)) {
        throw new FerryError(
          "TRANSIENT",
          `${context.printer}: ${context.operation}: the printer's nonce expired during the upload`,
          {
            ...(options.subject === undefined ? {} : { subject: options.subject }),
          },
        );
      }
      throw statusError(401, context, "wrong user name or password");
    }
    await this.check(res, ok, context);
    return res;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.close();
  }
}
