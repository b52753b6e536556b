/**
 * HTTP authentication as WebDAV servers ask for it: Basic, and Digest (RFC 7616) the way Apache's
 * mod_auth_digest speaks it (qop=auth, MD5; MD5-sess and SHA-256 too). Parsing challenges and
 * computing Authorization headers only; when to send what is the client's business.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Secret } from "../../core/secret.ts";

export interface Challenge {
  /** Lower-case scheme: "basic", "digest", ... */
  scheme: string;
  params: Map<string, string>;
}

const TOKEN = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?\s*,?/y;

/** The challenges of the WWW-Authenticate header(s): several may share one header, or come in several. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const challenges: Challenge[] = [];
  for (const value of values) {
    let current: Challenge | undefined;
    TOKEN.lastIndex = 0;
    for (let m = TOKEN.exec(value); m !== null && m[0] !== ""; m = TOKEN.exec(value)) {
      const [, name = "", quoted, bare] = m;
      if (quoted === undefined && bare === undefined) {
        // A bare token starts a new challenge (or is a token68, which no scheme here uses).
        current = { scheme: name.toLowerCase(), params: new Map() };
        challenges.push(current);
      } else if (current) {
        current.params.set(
          name.toLowerCase(),
          quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : (bare ?? ""),
        );
      }
    }
  }
  return challenges;
}

export function basicAuthorization(username: string, password: Secret): string {
  return `Basic ${Buffer.from(`${username}:${password.reveal()}`).toString("base64")}`;
}

const HASHES: Readonly<Record<string, string>> = {
  md5: "md5",
  "md5-sess": "md5",
  "sha-256": "sha256",
  "sha-256-sess": "sha256",
};

const quote = (value: string) => `"${value.replace(/["\\]/g, "\\$&")}"`;

/** One Digest nonce and what is needed to answer with it. */
export class DigestSession {
  /** When the challenge arrived (client clock, ms). */
  readonly receivedAt: number;
  /** The challenge said the previous nonce was stale (the credentials were fine). */
  readonly stale: boolean;
  readonly #realm: string;
  readonly #nonce: string;
  readonly #opaque: string | undefined;
  readonly #algorithm: string | undefined;
  readonly #hash: string;
  readonly #qop: "auth" | undefined;
  readonly #ha1: string;
  readonly #cnonce: string;
  #count = 0;
  readonly username: string;

  private constructor(challenge: Challenge, username: string, password: Secret, receivedAt: number) {
    const p = challenge.params;
    this.receivedAt = receivedAt;
    this.stale = (p.get("stale") ?? "").toLowerCase() === "true";
    this.#realm = p.get("realm") ?? "";
    this.#nonce = p.get("nonce") ?? "";
    this.#opaque = p.get("opaque");
    this.#algorithm = p.get("algorithm");
    const algorithm = (this.#algorithm ?? "md5").toLowerCase();
    this.#hash = HASHES[algorithm] ?? "md5";
    const qops = (p.get("qop") ?? "").split(",").map((q) => q.trim().toLowerCase());
    this.#qop = qops.includes("auth") ? "auth" : undefined;
    this.#cnonce = randomBytes(16).toString("hex");
    const base = this.#h(`${username}:${this.#realm}:${password.reveal()}`);
    this.#ha1 = algorithm.endsWith("-sess") ? this.#h(`${base}:${this.#nonce}:${this.#cnonce}`) : base;
    this.username = username;
  }

  /** A session for a Digest challenge, or undefined when the algorithm is one this client lacks. */
  static from(
    challenge: Challenge,
    username: string,
    password: Secret,
    now: number,
  ): DigestSession | undefined {
    const algorithm = (challenge.params.get("algorithm") ?? "md5").toLowerCase();
    if (HASHES[algorithm] === undefined || !challenge.params.has("nonce")) return undefined;
    return new DigestSession(challenge, username, password, now);
  }

  #h(text: string): string {
    return createHash(this.#hash).update(text).digest("hex");
  }

  /** The Authorization header for `method` on `uri` (the request target exactly as sent). */
  authorization(method: string, uri: string): string {
    const ha2 = this.#h(`${method}:${uri}`);
    const parts = [
      `username=${quote(this.username)}`,
      `realm=${quote(this.#realm)}`,
      `nonce=${quote(this.#nonce)}`,
      `uri=${quote(uri)}`,
    ];
    if (this.#qop) {
      const nc = (++this.#count).toString(16).padStart(8, "0");
      const response = this.#h(`${this.#ha1}:${this.#nonce}:${nc}:${this.#cnonce}:auth:${ha2}`);
      parts.push(`qop=auth`, `nc=${nc}`, `cnonce=${quote(this.#cnonce)}`, `response=${quote(response)}`);
    } else {
      parts.push(`response=${quote(this.#h(`${this.#ha1}:${this.#nonce}:${ha2}`))}`);
    }
    if (this.#algorithm !== undefined) parts.push(`algorithm=${this.#algorithm}`);
    if (this.#opaque !== undefined) parts.push(`opaque=${quote(this.#opaque)}`);
    return `Digest ${parts.join(", ")}`;
  }
}
