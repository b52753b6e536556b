/**
 * Who calls, checked before anything else of a request (onRequest: before the body is read).
 *
 * - `Authorization: Bearer ferry_…`: an API token (scripts, the CLI of another machine). It wins
 *   over a cookie, and needs no CSRF token: a browser never sends it by itself. `X-Api-Key:
 *   ferry_…` carries the same token, for clients that speak OctoPrint's API (slicers send their
 *   "API key" there); when both are sent, Authorization wins.
 * - The session cookie (browsers): httpOnly, SameSite=Lax, Secure (and `__Host-`) when the server
 *   is reached over https. A request that changes something (not GET/HEAD/OPTIONS) must echo the
 *   session's CSRF token in `X-CSRF-Token`, which another site cannot read.
 *
 * Then the route's role: none → 401, too low → 403.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Accounts, Identity } from "../auth/accounts.ts";
import { SESSION_TTL_MS } from "../auth/accounts.ts";
import { roleAllows } from "../auth/roles.ts";
import { csrfTokenFor, sameSecret } from "../auth/secrets.ts";
import { HttpProblem } from "./problems.ts";

export const CSRF_HEADER = "x-csrf-token";
/** OctoPrint's header for an API key: here another carrier of an API token. */
export const API_KEY_HEADER = "x-api-key";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export interface SessionCookie {
  name: string;
  secure: boolean;
}

/** `__Host-` binds the cookie to this host and path `/`, but browsers take it only over https. */
export function sessionCookie(secure: boolean): SessionCookie {
  return { name: secure ? "__Host-ferry_session" : "ferry_session", secure };
}

export function setSessionCookie(reply: FastifyReply, cookie: SessionCookie, secret: string): void {
  reply.setCookie(cookie.name, secret, {
    httpOnly: true,
    sameSite: "lax",
    secure: cookie.secure,
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
}

export function clearSessionCookie(reply: FastifyReply, cookie: SessionCookie): void {
  reply.clearCookie(cookie.name, { httpOnly: true, sameSite: "lax", secure: cookie.secure, path: "/" });
}

const unauthenticated = (detail: string, bearerError = false) =>
  new HttpProblem(401, "unauthenticated", "Not signed in", detail, {
    headers: {
      "www-authenticate": bearerError
        ? 'Bearer realm="ferry", error="invalid_token"'
        : 'Bearer realm="ferry"',
    },
  });

/** The caller's identity from a bearer token or the session cookie; undefined when anonymous. */
async function identify(
  request: FastifyRequest,
  accounts: Accounts,
  cookie: SessionCookie,
): Promise<Identity | undefined> {
  const authorization = request.headers.authorization;
  const apiKey = request.headers[API_KEY_HEADER];
  if (authorization !== undefined || apiKey !== undefined) {
    const token =
      authorization !== undefined
        ? /^Bearer +(\S+)\s*$/i.exec(authorization)?.[1]
        : typeof apiKey === "string"
          ? apiKey.trim()
          : undefined;
    const identity = token === undefined || token === "" ? undefined : await accounts.tokenIdentity(token);
    if (!identity)
      throw unauthenticated(
        `the API token is unknown, revoked or expired, or its user is disabled (${authorization !== undefined ? "Authorization: Bearer ferry_…" : "X-Api-Key: ferry_…"})`,
        true,
      );
    return identity;
  }
  const secret = request.cookies[cookie.name];
  if (secret === undefined || secret === "") return undefined;
  const identity = await accounts.sessionIdentity(secret);
  if (!identity) throw unauthenticated("the session has ended; sign in again (POST /api/v1/session)");
  if (!SAFE_METHODS.has(request.method)) {
    const sent = request.headers[CSRF_HEADER];
    if (typeof sent !== "string" || !sameSecret(sent, csrfTokenFor(secret)))
      throw new HttpProblem(
        403,
        "csrf",
        "CSRF token missing or wrong",
        `a change made with a session cookie needs the session's CSRF token in the X-CSRF-Token header (from POST /api/v1/session or GET /api/v1/me)`,
      );
  }
  return identity;
}

/** The onRequest hook: sets `request.identity`, or refuses with 401 / 403. */
export function authenticate(accounts: Accounts, cookie: SessionCookie) {
  return async (request: FastifyRequest): Promise<void> => {
    if (request.is404) return;
    const role = request.routeOptions.config.role;
    if (role === undefined)
      // The server refuses to start with such a route; this is the fail-safe.
      throw new HttpProblem(403, "forbidden", "Forbidden", "this route declares no role");
    if (role === "public") {
      request.identity = null;
      return;
    }
    const identity = await identify(request, accounts, cookie);
    if (!identity)
      throw unauthenticated(
        "sign in (POST /api/v1/session) or send an API token (Authorization: Bearer ferry_…)",
      );
    if (!roleAllows(identity.role, role))
      throw new HttpProblem(
        403,
        "forbidden",
        "Forbidden",
        `this needs the role ${role} or above; ${identity.via === "token" ? "this token acts as" : `${identity.user.name} is`} ${identity.role}`,
      );
    request.identity = identity;
  };
}

/** The CSRF token of the request's session, when it came with one. */
export function csrfTokenOf(request: FastifyRequest, cookie: SessionCookie): string | undefined {
  const secret = request.cookies[cookie.name];
  return request.identity?.via === "session" && secret ? csrfTokenFor(secret) : undefined;
}
