/**
 * The random secrets of sessions and API tokens, and how they are kept: only their SHA-256 digest
 * is stored (they are 256-bit random values, so a fast digest is enough: nothing to brute-force),
 * and digests are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** 32 random bytes, base64url (43 characters). */
export function randomSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function digest(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Constant-time equality of two strings (false at once only when their lengths differ). */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  return left.length === right.length && timingSafeEqual(left, right);
}

/** API tokens read `ferry_<id>_<secret>`: the id (16 hex digits) is public, shown in listings. */
export const TOKEN_PREFIX = "ferry_";
const TOKEN_PATTERN = /^ferry_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function newTokenId(): string {
  return randomBytes(8).toString("hex");
}

export function formatApiToken(id: string, secret: string): string {
  return `${TOKEN_PREFIX}${id}_${secret}`;
}

/** The id and secret of a token as given, or undefined when it is not shaped like one. */
export function parseApiToken(text: string): { id: string; secret: string } | undefined {
  const match = TOKEN_PATTERN.exec(text);
  return match?.[1] !== undefined && match[2] !== undefined ? { id: match[1], secret: match[2] } : undefined;
}

/**
 * The CSRF token of a session: derived from the session's secret, so the server keeps nothing
 * more and a page that lost it gets it again from GET /api/v1/me. Another site can neither read
 * the cookie nor that response, so it cannot forge the header.
 */
export function csrfTokenFor(sessionSecret: string): string {
  return createHash("sha256").update(`ferry-csrf:${sessionSecret}`, "utf8").digest("base64url");
}
