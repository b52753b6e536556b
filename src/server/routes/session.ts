/**
 * Signing in and out in a browser, and who am I: POST /api/v1/session sets the session cookie and
 * returns the CSRF token the page echoes in X-CSRF-Token; GET /api/v1/me gives it again.
 */
import { z } from "zod";
import { PASSWORD_MAX_LENGTH } from "../../auth/passwords.ts";
import { csrfTokenFor } from "../../auth/secrets.ts";
import { AttemptLimiter } from "../attempt-limiter.ts";
import { clearSessionCookie, csrfTokenOf, setSessionCookie } from "../auth.ts";
import { HttpProblem } from "../problems.ts";
import { identityOf, isoTime, roleSchema, type FerryRoutes } from "../route.ts";
import { userSchema, userView } from "./schemas.ts";

/** Sign-in attempts per user name and client address. */
export const SIGN_IN_LIMIT = { limit: 5, windowMs: 60_000 };

const session: FerryRoutes = (server, { app, session: cookie }) => {
  const limiter = new AttemptLimiter({ ...SIGN_IN_LIMIT, clock: app.clock });

  server.post(
    "/api/v1/session",
    {
      config: { role: "public" },
      schema: {
        summary: "Sign in: sets the session cookie, returns the CSRF token",
        description: `At most ${SIGN_IN_LIMIT.limit} attempts a minute per user name and client address (429 with Retry-After).`,
        tags: ["session"],
        body: z.strictObject({
          name: z.string().min(1).max(64),
          password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
        }),
        response: {
          200: z.object({ user: userSchema, csrfToken: z.string(), expiresAt: z.string() }),
        },
      },
    },
    async (request, reply) => {
      const { name, password } = request.body;
      const key = `${name.toLowerCase()}\n${request.ip}`;
      const wait = limiter.attempt(key);
      if (wait > 0)
        throw new HttpProblem(
          429,
          "rate-limited",
          "Too many sign-in attempts",
          `too many sign-in attempts for "${name}" from this address; try again in ${wait} s`,
          { headers: { "retry-after": String(wait) } },
        );
      const signedIn = await app.stored.accounts.signIn(name, password);
      if (!signedIn)
        throw new HttpProblem(401, "unauthenticated", "Not signed in", "wrong user name or password");
      limiter.reset(key);
      setSessionCookie(reply, cookie, signedIn.secret);
      request.identity = { user: signedIn.user, role: signedIn.user.role, via: "session" };
      return {
        user: userView(signedIn.user),
        csrfToken: csrfTokenFor(signedIn.secret),
        expiresAt: isoTime(signedIn.expiresAt),
      };
    },
  );

  server.delete(
    "/api/v1/session",
    {
      config: { role: "viewer" },
      schema: { summary: "Sign out: ends the session and clears its cookie", tags: ["session"] },
    },
    async (request, reply) => {
      const secret = request.cookies[cookie.name];
      if (identityOf(request).via === "session" && secret !== undefined)
        await app.stored.accounts.endSession(secret);
      clearSessionCookie(reply, cookie);
      return reply.code(204).send();
    },
  );

  server.get(
    "/api/v1/me",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Who is calling, with which role",
        tags: ["session"],
        response: {
          200: z.object({
            user: userSchema,
            role: roleSchema.describe("the role this request acts with (a token's may be below its user's)"),
            via: z.enum(["session", "token"]),
            csrfToken: z.string().optional().describe("with a session: the value for X-CSRF-Token"),
            tokenId: z.string().optional(),
          }),
        },
      },
    },
    (request, reply) => {
      const identity = identityOf(request);
      const csrfToken = csrfTokenOf(request, cookie);
      void reply.send({
        user: userView(identity.user),
        role: identity.role,
        via: identity.via,
        ...(csrfToken === undefined ? {} : { csrfToken }),
        ...(identity.tokenId === undefined ? {} : { tokenId: identity.tokenId }),
      });
    },
  );
};

export default session;
