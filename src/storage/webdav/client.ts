/**
 * HTTP for one WebDAV server: keep-alive connections (one undici Agent per adapter), Basic or
 * Digest authentication, and error translation. Paths are Ferry paths below the root collection.
 *
 * Authentication: `basic` sends credentials from the first request; `digest` and `auto` learn the
 * scheme from the server's first challenge (auto: Digest when offered, else Basic) and never send a
 * password before the server asked for it. A Digest 401 is answered once with the new nonce (stale
 * or not: a restarted server forgets its nonces); a second 401 is AUTH.
 *
 * An upload's body cannot be sent twice, so before a PUT the client makes sure it is authenticated:
 * it learns the scheme first if it must, and under Digest fetches a fresh nonce when its own is older
 * than `nonceRefreshMs` (halved whenever the server calls a younger nonce stale). A PUT refused with
 * 401 anyway is checked with a bodiless request: good credentials make it TRANSIENT, bad ones AUTH.
 */
import type { IncomingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { FerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Secret } from "../../core/secret.ts";
import { basicAuthorization, DigestSession, parseChallenges, type Challenge } from "./auth.ts";
import {
  abortable,
  checkAborted,
  isDroppedConnection,
  networkError,
  statusError,
  type ErrorContext,
} from "./errors.ts";

export type AuthMode = "auto" | "basic" | "digest";

export interface DavClientOptions {
  /** The root collection. */
  url: URL;
  device: string;
  username?: string | undefined;
  password?: Secret | undefined;
  auth: AuthMode;
  /** Reads the PEM of the CA to trust for https (called once, on the first request). */
  ca?: (() => string) | undefined;
  logger: Logger;
  /** Connections kept to the server. */
  connections: number;
  clock?: () => number;
  /** Refresh a Digest nonce older than this before an upload (default 60 s; Apache's live 300 s). */
  nonceRefreshMs?: number;
}

export interface DavRequest {
  method: string;
  /** Ferry path below the root ("" is the root). */
  path: string;
  /** Adds a trailing slash: the path names a collection (nginx insists on it for MKCOL, DELETE). */
  dir?: boolean;
  headers?: Record<string, string>;
  /** A body that can be sent again (PROPFIND queries). */
  body?: string;
  signal?: AbortSignal | undefined;
  /** What the request does, for messages ("list", "upload"...). */
  operation: string;
}

export interface DavResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"];
}

type Scheme = "unknown" | "none" | "basic" | "digest";

/** What a request carried: the scheme, and the Digest session it answered with. */
interface Sent {
  scheme: Scheme;
  session: DigestSession | undefined;
}

/** Bodiless requests that may go once more over a new connection when a kept-alive one was dropped. */
const RESENDABLE = new Set(["GET", "HEAD", "OPTIONS", "PROPFIND", "MKCOL", "DELETE"]);

export const PROPFIND_PROBE =
  '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>';

export class DavClient {
  readonly device: string;
  readonly #origin: string;
  /** Path of the root collection as sent, with a trailing slash. */
  readonly #base: string;
  readonly #options: DavClientOptions;
  readonly #logger: Logger;
  readonly #clock: () => number;
  #agent: Agent | undefined;
  #scheme: Scheme;
  #digest: DigestSession | undefined;
  #refreshMs: number;
  #preflight: Promise<void> | undefined;
  #closed = false;

  constructor(options: DavClientOptions) {
    this.device = options.device;
    this.#options = options;
    this.#origin = options.url.origin;
    this.#base = options.url.pathname.endsWith("/") ? options.url.pathname : `${options.url.pathname}/`;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#refreshMs = options.nonceRefreshMs ?? 60_000;
    const credentials = options.username !== undefined && options.password !== undefined;
    this.#scheme = !credentials ? "none" : options.auth === "basic" ? "basic" : "unknown";
  }

  /** The request target of a Ferry path: the root's path and each name percent-encoded. */
  target(path: string, dir = false): string {
    if (path === "") return this.#base;
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    return `${this.#base}${encoded}${dir ? "/" : ""}`;
  }

  /** The absolute URL of a Ferry path (MOVE's Destination). */
  url(path: string, dir = false): string {
    return `${this.#origin}${this.target(path, dir)}`;
  }

  /** The root collection's path as sent (percent-encoded), with a trailing slash. */
  get basePath(): string {
    return this.#base;
  }

  #agentFor(): Agent {
    if (this.#closed) throw new FerryError("UNAVAILABLE", `${this.device}: the adapter is closed`);
    this.#agent ??= new Agent({
      connections: this.#options.connections,
      keepAliveTimeout: 4_000,
      connect: {
        timeout: 10_000,
        ...(this.#options.ca && this.#origin.startsWith("https:") ? { ca: this.#options.ca() } : {}),
      },
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
    return this.#agent;
  }

  #authorization(method: string, target: string): Record<string, string> {
    const { username, password } = this.#options;
    if (username === undefined || password === undefined) return {};
    if (this.#scheme === "basic") return { Authorization: basicAuthorization(username, password) };
    if (this.#scheme === "digest" && this.#digest) {
      return { Authorization: this.#digest.authorization(method, target) };
    }
    return {};
  }

  /** What the next request carries: the scheme and the Digest session it answers with. */
  #sending(): Sent {
    const carries = this.#scheme === "basic" || (this.#scheme === "digest" && this.#digest !== undefined);
    return { scheme: carries ? this.#scheme : "none", session: this.#digest };
  }

  async #dispatch(
    method: string,
    target: string,
    headers: Record<string, string>,
    body: Dispatcher.DispatchOptions["body"],
    signal: AbortSignal | undefined,
    context: ErrorContext,
  ): Promise<DavResponse> {
    checkAborted(signal, context);
    try {
      const res = await this.#agentFor().request({
        origin: this.#origin,
        path: target,
        method,
        headers: { ...headers, ...this.#authorization(method, target) },
        body: body ?? null,
        signal: signal ?? null,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw networkError(error, context, signal);
    }
  }

  /**
   * Takes a 401's challenges. True: send again with what was learnt. A string: why the
   * credentials cannot work (wrong password, a scheme this mode refuses).
   */
  #takeChallenge(header: IncomingHttpHeaders["www-authenticate"], sent: Sent): true | string {
    const { username, password, auth } = this.#options;
    if (username === undefined || password === undefined) {
      return "the server asks for credentials: set username and password";
    }
    const challenges = parseChallenges(header);
    const digest = challenges.find((c) => c.scheme === "digest");
    const basic = challenges.find((c) => c.scheme === "basic");
    const offered = challenges.map((c) => c.scheme).join(", ") || "nothing";
    if (digest && auth !== "basic") return this.#takeDigest(digest, sent, username, password);
    if (basic && auth !== "digest") {
      if (sent.scheme === "basic") return "wrong user name or password";
      this.#scheme = "basic";
      return true;
    }
    return `the server offers ${offered} authentication, and auth is ${auth}`;
  }

  #takeDigest(challenge: Challenge, sent: Sent, username: string, password: Secret) {
    const now = this.#clock();
    const session = DigestSession.from(challenge, username, password, now);
    if (!session)
      return `the server's Digest algorithm ${challenge.params.get("algorithm") ?? "?"} is not supported`;
    if (session.stale && sent.session) {
      // The server's nonces live shorter than assumed: renew earlier from now on.
      const age = now - sent.session.receivedAt;
      this.#refreshMs = Math.max(100, Math.min(this.#refreshMs, age / 2));
    }
    this.#scheme = "digest";
    this.#digest = session;
    return true;
  }

  /**
   * Sends a request whose body (if any) can be sent again, through the authentication handshake.
   * Returns the response whatever its status except 401, which is AUTH. A dropped kept-alive
   * connection is replaced once for bodiless requests.
   */
  async send(request: DavRequest): Promise<DavResponse> {
    const target = this.target(request.path, request.dir);
    const context = { device: this.device, operation: request.operation, path: request.path };
    const headers = {
      ...request.headers,
      ...(request.body === undefined ? {} : { "Content-Type": "application/xml; charset=utf-8" }),
    };
    for (let attempt = 0; ; attempt++) {
      const sent = this.#sending();
      let res: DavResponse;
      try {
        res = await this.#dispatch(request.method, target, headers, request.body, request.signal, context);
      } catch (error) {
        const again =
          RESENDABLE.has(request.method) && error instanceof FerryError && isDroppedConnection(error);
        if (!again || request.signal?.aborted === true) throw error;
        this.#logger.debug(
          { device: this.device, err: error },
          "WebDAV connection dropped; sending once more",
        );
        res = await this.#dispatch(request.method, target, headers, request.body, request.signal, context);
      }
      if (res.status !== 401) {
        if (this.#scheme === "unknown" && sent.scheme === "none" && res.status < 400) this.#scheme = "none";
        return res;
      }
      const header = res.headers["www-authenticate"];
      await res.body.dump().catch(() => undefined);
      const verdict = this.#takeChallenge(header, sent);
      if (verdict !== true || attempt > 0) {
        throw statusError(401, context, verdict === true ? "wrong user name or password" : verdict);
      }
    }
  }

  /** Learns the scheme or renews an old Digest nonce when an upload is about to go. */
  async #ready(signal: AbortSignal | undefined, context: ErrorContext): Promise<void> {
    const fresh = this.#digest !== undefined && this.#clock() - this.#digest.receivedAt < this.#refreshMs;
    if (this.#scheme === "none" || this.#scheme === "basic" || (this.#scheme === "digest" && fresh)) return;
    this.#preflight ??= this.#probe(this.#scheme === "digest").finally(() => (this.#preflight = undefined));
    await this.#asFor(abortable(this.#preflight, signal, context), context);
  }

  /** Errors of the shared handshake, told for the request that waited for it. */
  async #asFor(handshake: Promise<void>, context: ErrorContext): Promise<void> {
    try {
      await handshake;
    } catch (error) {
      const prefix = `${this.device}: authenticate /: `;
      if (!(error instanceof FerryError) || !error.message.startsWith(prefix)) throw error;
      throw new FerryError(
        error.code,
        `${this.device}: ${context.operation} ${context.path}: ${error.message.slice(prefix.length)}`,
        { cause: error, subject: context.path, retryable: error.retryable },
      );
    }
  }

  /** A bodiless request to the root: learns the scheme, and a new nonce when `renew`. */
  async #probe(renew: boolean): Promise<void> {
    // Without credentials the server hands out a fresh nonce.
    if (renew) this.#digest = undefined;
    const res = await this.send({
      method: "PROPFIND",
      path: "",
      headers: { Depth: "0" },
      body: PROPFIND_PROBE,
      operation: "authenticate",
    });
    await res.body.dump().catch(() => undefined);
  }

  /**
   * PUT of exactly `length` bytes from `body`. `failure` tells whether the body's own source failed
   * (its error is reported instead of the request's). Returns the response, whatever its status
   * except 401.
   */
  async upload(
    request: Omit<DavRequest, "body" | "method">,
    body: AsyncIterable<Uint8Array>,
    length: number,
    failure: () => unknown,
  ): Promise<DavResponse> {
    const context = { device: this.device, operation: request.operation, path: request.path };
    await this.#ready(request.signal, context);
    const sent = this.#sending();
    const headers = {
      ...request.headers,
      "Content-Length": String(length),
      "Content-Type": "application/octet-stream",
    };
    let res: DavResponse;
    try {
      if (length === 0) {
        // Nothing to stream, but the source must still be checked to be empty.
        for await (const _ of body) throw new Error("unreachable: an empty body yielded bytes");
      }
      const stream = length === 0 ? "" : Readable.from(body, { objectMode: false });
      res = await abortable(
        this.#dispatch("PUT", this.target(request.path), headers, stream, request.signal, context),
        request.signal,
        context,
      );
    } catch (error) {
      const cause = failure();
      throw cause === undefined ? error : cause;
    }
    if (res.status !== 401) return res;
    const header = res.headers["www-authenticate"];
    await res.body.dump().catch(() => undefined);
    const verdict = this.#takeChallenge(header, sent);
    if (verdict !== true) throw statusError(401, context, verdict);
    // Good credentials with a nonce that expired while the body went? Ask once without a body.
    await this.#asFor(this.#probe(false), context);
    throw new FerryError(
      "TRANSIENT",
      `${this.device}: ${request.operation} ${request.path}: the server asked to authenticate again during the upload (an expired nonce); nothing was stored`,
      { subject: request.path },
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const agent = this.#agent;
    if (!agent) return;
    // Let requests in flight finish for a moment, then cut them (a stalled upload must not hang close).
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), 2_000)));
    const outcome = await Promise.race([agent.close().then(() => "closed" as const), late]);
    clearTimeout(timer);
    if (outcome === "late") await agent.destroy();
  }
}
