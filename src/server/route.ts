/**
 * What a route author needs, in one place. A feature's routes are one Fastify plugin file under
 * routes/, listed in routes/all.ts; every route says in `config.role` who may call it:
 *
 *     const things: FerryRoutes = (server, { app }) => {
 *       server.get(
 *         "/api/v1/things/:name",
 *         {
 *           config: { role: "viewer" },
 *           schema: { summary: "One thing", tags: ["things"], params: z.strictObject({ name: NAME }),
 *                     response: { 200: thingSchema } },
 *         },
 *         async (request) => app.things.get(request.params.name),   // typed from the schemas
 *       );
 *     };
 *
 * Roles: "public" (anyone), "viewer" < "user" < "operator" < "admin". The server refuses to
 * start when a route declares none. Anonymous calls of a non-public route get 401, a lower role
 * 403, before the body is read. `identityOf(request)` says who calls. Throw a FerryError (mapped
 * by its code: NOT_FOUND 404, EXISTS/CONFLICT 409, ...) or an HttpProblem; never send errors by
 * hand. Bodies are `z.strictObject` (unknown fields are refused); response schemas keep anything
 * undeclared (a password hash, a token's digest) out of responses.
 */
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { App } from "../app.ts";
import { ACCOUNT_NAME_PATTERN, type Identity } from "../auth/accounts.ts";
import { ROLES, type Role } from "../auth/roles.ts";
import type { SessionCookie } from "./auth.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { OidcLogin } from "./oidc.ts";
import { HttpProblem } from "./problems.ts";
import type { SetupGate } from "./setup-gate.ts";

/** Who may call a route: anyone, or a role and those above it. */
export type RouteRole = "public" | Role;

declare module "fastify" {
  interface FastifyContextConfig {
    /** Required on every route (checked when the server starts). */
    role?: RouteRole;
  }
  interface FastifyRequest {
    /** Who calls; null on public routes without credentials. */
    identity: Identity | null;
  }
}

/** What every routes plugin is given: the application, and the server's own sign-in pieces. */
export interface RouteContext {
  app: App;
  /** The session cookie's name and flags. */
  session: SessionCookie;
  /** The first-start setup (routes/setup.ts). */
  setup: SetupGate;
  /** Sign-in through the identity provider (routes/oidc.ts); undefined without server.auth.oidc. */
  oidc: OidcLogin | undefined;
  /** What GET /metrics shows (routes/metrics.ts); the event stream reports its clients to it. */
  metrics: ServerMetrics;
}

/** The Fastify instance a routes plugin registers on: request types come from the zod schemas. */
export type RouteServer = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** A feature's routes: registers them (in a scope of their own), nothing else. */
export type FerryRoutes = (server: RouteServer, context: RouteContext) => void;

/** The caller of a non-public route (the auth hook has checked it). */
export function identityOf(request: FastifyRequest): Identity {
  if (request.identity === null)
    throw new HttpProblem(401, "unauthenticated", "Not signed in", "this route needs a signed-in caller");
  return request.identity;
}

export const roleSchema = z.enum(ROLES);

/** A user or token name in a path or body: the pattern Accounts enforces, so `..` never gets through. */
export const accountName = z
  .string()
  .regex(
    ACCOUNT_NAME_PATTERN,
    'letters, digits, "_", "." or "-", starting with a letter or digit, at most 64',
  );

/** Times in responses: ISO 8601 text. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
