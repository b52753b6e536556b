/**
 * PrusaLink's authentication: HTTP Digest (RFC 7616 without `qop`, MD5) with short-lived nonces,
 * or an `X-Api-Key` header. A request carrying both is refused with 400 so a client that mixes
 * them is caught by the tests instead of working by luck.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { SimHttpError } from "./http-util.ts";

export const REALM = "Printer API";

export interface AuthOptions {
  username: string;
  /** Digest password; undefined turns Digest off (API key only). */
  password: string | undefined;
  /** Accepted X-Api-Key; undefined turns the header off. */
  apiKey: string | undefined;
  nonceLifetimeMs: number;
  clock: () => number;
}

const md5 = (text: string) => createHash("md5").update(text).digest("hex");

/** Parses `Digest a=b, c="d, e"` into its parameters (names lower-cased). */
export function parseDigestParams(header: string): Map<string, string> | undefined {
  const m = /^\s*Digest\s+/i.exec(header);
  if (!m) return undefined;
  const params = new Map<string, string>();
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/gy;
  re.lastIndex = m[0].length;
  let match: RegExpExecArray | null;
  while (re.lastIndex < header.length && (match = re.exec(header)) !== null) {
    const name = (match[1] ?? "").toLowerCase();
    params.set(name, match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : (match[3] ?? ""));
  }
  return params;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class DigestGuard {
  readonly #options: AuthOptions;
  readonly #secret = randomBytes(16);

  constructor(options: AuthOptions) {
    this.#options = options;
  }

  /** A nonce that proves its own issue time: 16 hex digits of the clock + 16 of an HMAC over them. */
  #nonce(): string {
    const stamp = Math.floor(this.#options.clock()).toString(16).padStart(16, "0");
    return stamp + this.#mac(stamp);
  }

  #mac(stamp: string): string {
    return createHmac("sha256", this.#secret).update(stamp).digest("hex").slice(0, 16);
  }

  /** Issue time of a nonce we made, or undefined for anything else. */
  #nonceTime(nonce: string): number | undefined {
    if (!/^[0-9a-f]{32}$/.test(nonce)) return undefined;
    const stamp = nonce.slice(0, 16);
    if (!safeEqual(nonce.slice(16), this.#mac(stamp))) return undefined;
    return parseInt(stamp, 16);
  }

  challenge(stale: boolean): string {
    return `Digest realm="${REALM}", nonce="${this.#nonce()}", stale=${stale ? "true" : "false"}`;
  }

  #unauthorized(text: string, stale = false): SimHttpError {
    const headers: Record<string, string> =
      this.#options.password === undefined ? {} : { "WWW-Authenticate": this.challenge(stale) };
    return new SimHttpError(401, "Unauthorized", text, headers);
  }

  /** Throws the answer (401 with a fresh challenge, or 400) unless the request is authenticated. */
  check(req: IncomingMessage): void {
    const apiKey = req.headers["x-api-key"];
    const authorization = req.headers.authorization;
    if (apiKey !== undefined && authorization !== undefined) {
      throw new SimHttpError(400, "Bad Request", "send either X-Api-Key or Digest authorization, not both");
    }
    if (apiKey !== undefined) {
      const expected = this.#options.apiKey;
      if (expected !== undefined && typeof apiKey === "string" && safeEqual(apiKey, expected)) return;
      throw this.#unauthorized("invalid API key");
    }
    if (authorization === undefined) throw this.#unauthorized("authorization required");
    const password = this.#options.password;
    const params = parseDigestParams(authorization);
    if (password === undefined || !params) throw this.#unauthorized("Digest authorization required");

    const get = (name: string) => params.get(name) ?? "";
    const issued = this.#nonceTime(get("nonce"));
    if (issued === undefined) throw this.#unauthorized("unknown nonce");
    if (get("uri") !== req.url)
      throw new SimHttpError(400, "Bad Request", "Digest uri does not match the request");
    const ha1 = md5(`${this.#options.username}:${REALM}:${password}`);
    const ha2 = md5(`${req.method ?? "GET"}:${get("uri")}`);
    const expected = md5(`${ha1}:${get("nonce")}:${ha2}`);
    const valid =
      get("username") === this.#options.username &&
      get("realm") === REALM &&
      safeEqual(get("response"), expected);
    if (!valid) throw this.#unauthorized("wrong user name or password");
    if (this.#options.clock() - issued > this.#options.nonceLifetimeMs)
      throw this.#unauthorized("stale nonce", true);
  }
}
