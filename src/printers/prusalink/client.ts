/**
 * HTTP client for one PrusaLink printer, the printers' HttpClient (../http.ts) with: authentication
 * by Digest or X-Api-Key (never both), PrusaLink's error words, parsed answers and exact uploads.
 *
 * PrusaLink's Digest has no `qop` and nonces that live about five seconds. The client keeps the
 * last nonce and sends Authorization preemptively; a 401 with `stale=true` is retried once with
 * the new nonce. An upload's body cannot be replayed, so before a PUT the client fetches a fresh
 * nonce when its own is older than `nonceRefreshMs` (and halves that bound whenever a younger
 * nonce turns out stale). If an upload is still refused as stale, the error is TRANSIENT.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import { silentLogger, type Logger } from "../../core/logger.ts";
import type { Secret } from "../../core/secret.ts";
import {
  HttpClient,
  subjectOf,
  where,
  type CallOptions,
  type ErrorContext,
  type HttpResponse,
  type HttpTarget,
} from "../http.ts";
import { parseWire } from "./api-types.ts";
import { NETWORK_TERMS, refusal, statusError } from "./errors.ts";

export interface PrusaLinkClientOptions extends HttpTarget {
  username?: string;
  password?: Secret;
  apiKey?: Secret;
  logger?: Logger;
  /** ms clock for nonce ages (default Date.now). */
  clock?: () => number;
  /** Refresh the nonce before an upload when it is older than this (default 2000 ms). */
  nonceRefreshMs?: number;
}

interface Nonce {
  realm: string;
  nonce: string;
  opaque: string | undefined;
  receivedAt: number;
}

const md5 = (text: string) => createHash("md5").update(text).digest("hex");
const quote = (value: string) => `"${value.replace(/["\\]/g, "\\$&")}"`;

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
      const got = sent > size ? "more than" : `${sent} bytes instead of`;
      fail(
        new FerryError(
          "PROTOCOL",
          `${where(context)}: the source gave ${got} the ${size} bytes announced`,
          subjectOf(context),
        ),
      );
    }
  }
  return { state, chunks: chunks() };
}

export class PrusaLinkClient extends HttpClient {
  readonly #username: string | undefined;
  readonly #password: Secret | undefined;
  readonly #apiKey: Secret | undefined;
  readonly #logger: Logger;
  readonly #clock: () => number;
  #refreshAfterMs: number;
  #nonce: Nonce | undefined;

  constructor(options: PrusaLinkClientOptions) {
    const logger = options.logger ?? silentLogger;
    super(options, {
      connections: 4,
      terms: NETWORK_TERMS,
      refusal,
      auth: (method, target) => this.#authorization(method, target),
      maxJsonBytes: 32 * 1024 * 1024,
      resend: { vendor: "PrusaLink", logger },
    });
    if (options.apiKey && options.password) {
      throw new FerryError("PROTOCOL", `${options.printer}: give either a password or an API key, not both`);
    }
    this.#logger = logger;
    this.#username = options.username;
    this.#password = options.password;
    this.#apiKey = options.apiKey;
    this.#clock = options.clock ?? Date.now;
    this.#refreshAfterMs = options.nonceRefreshMs ?? 2000;
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

  /**
   * Sends a bodiless request and returns the response, whatever its status (after the Digest
   * handshake). `path` is the API path, e.g. "/api/v1/status".
   */
  override async send(method: string, path: string, options: CallOptions = {}): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const res = await super.send(method, path, options);
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

  /** GET of a JSON resource, parsed with `schema`; undefined for 204 No Content. */
  async getJson<T>(path: string, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T | undefined> {
    const context = this.context("GET", path, options);
    const res = await this.call("GET", path, [200, 204], options);
    if (res.status === 204) {
      await res.body.dump();
      return undefined;
    }
    const json = await this.readJson(res, context, options.signal);
    return parseWire(schema, json, `${context.printer}: ${context.operation}`, options.subject);
  }

  /** Makes sure the nonce is young enough to carry a request whose body cannot be replayed. */
  async #freshNonce(options: CallOptions): Promise<void> {
    if (this.#apiKey || !this.#password) return;
    const nonce = this.#nonce;
    if (nonce && this.#clock() - nonce.receivedAt < this.#refreshAfterMs) return;
    // A request without credentials is the one way to be handed a new nonce.
    const saved = this.#nonce;
    this.#nonce = undefined;
    const res = await this.request("GET", "/api/version", { ...options, operation: "nonce refresh" });
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
  ): Promise<HttpResponse> {
    await this.#freshNonce(options);
    const context = this.context("PUT", path, options);
    const headers = {
      ...options.headers,
      "Content-Length": String(size),
      "Content-Type": "application/octet-stream",
    };
    const counted = exactly(body, size, context);
    let res: HttpResponse;
    try {
      res = await this.request(
        "PUT",
        path,
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
          subjectOf(context),
        );
      }
      throw statusError(401, context, "wrong user name or password");
    }
    await this.check(res, ok, context);
    return res;
  }
}
