/**
 * Signing in through the identity provider (server.auth.oidc): GET /api/v1/session/oidc sends the
 * browser there; the provider sends it back to /api/v1/session/oidc/callback, which opens the same
 * session a password sign-in does and sends the browser to `/`. Without `auth.oidc` both answer
 * 404. Failures are problems, and leave no session.
 */
import type { FastifyReply } from "fastify";
import { z } from "zod";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { setSessionCookie } from "../auth.ts";
import { OIDC_CALLBACK_PATH, OIDC_FLOW_TTL_MS, OIDC_LOGIN_PATH, type OidcLogin } from "../oidc.ts";
import type { FerryRoutes } from "../route.ts";

const oidc: FerryRoutes = (server, { app, session: sessionCookie, oidc: login }) => {
  const configured = (): OidcLogin => {
    if (!login)
      throw new FerryError(
        "NOT_FOUND",
        "sign-in through an identity provider is not set up on this server (server.auth.oidc in ferry.yaml)",
      );
    return login;
  };
  const clearFlow = (reply: FastifyReply, flow: OidcLogin) =>
    reply.clearCookie(flow.cookieName, {
      httpOnly: true,
      sameSite: "lax",
      secure: sessionCookie.secure,
      path: "/",
    });

  server.get(
    "/api/v1/session/options",
    {
      config: { role: "public" },
      schema: {
        summary: "How one may sign in here: password, and the identity provider when configured",
        tags: ["session"],
        response: { 200: z.object({ password: z.boolean(), oidc: z.string().nullable() }) },
      },
    },
    () => ({ password: true, oidc: login ? OIDC_LOGIN_PATH : null }),
  );

  server.get(
    OIDC_LOGIN_PATH,
    {
      config: { role: "public" },
      schema: {
        summary: "Sign in through the identity provider: redirects there",
        description:
          "302 to the provider's authorization endpoint (code flow, PKCE S256, state, nonce); the flow is bound to the browser by a short-lived cookie. 404 without server.auth.oidc; 503 when the provider cannot be reached.",
        tags: ["session"],
      },
    },
    async (_request, reply) => {
      const flow = configured();
      const { location, cookie } = await flow.begin();
      reply.setCookie(flow.cookieName, cookie, {
        httpOnly: true,
        // Lax: the provider's redirect back is a top-level navigation, which brings it along.
        sameSite: "lax",
        secure: sessionCookie.secure,
        path: "/",
        maxAge: OIDC_FLOW_TTL_MS / 1000,
      });
      return reply.redirect(location, 302);
    },
  );

  server.get(
    OIDC_CALLBACK_PATH,
    {
      config: { role: "public" },
      schema: {
        summary: "Where the identity provider sends the browser back: opens the session, redirects to /",
        description:
          "Checks state, nonce and PKCE, exchanges the code, reads the role claim (ID token, else userinfo); the user is added at the first sign-in and takes the claim's role at each one. 400 for a callback that is not this browser's sign-in, 401 when the provider refused, 403 when the claim gives no role or the user is disabled, 409 for a name taken by another user, 503 when the provider cannot be reached.",
        tags: ["session"],
        // Providers add parameters of their own (session_state, iss): taken as they come.
        querystring: z.looseObject({
          code: z.string().optional(),
          state: z.string().optional(),
          error: z.string().optional(),
          error_description: z.string().optional(),
        }),
      },
    },
    async (request, reply) => {
      const flow = configured();
      // Whatever happens, this flow is over: its cookie goes.
      clearFlow(reply, flow);
      const query = request.url.includes("?") ? request.url.slice(request.url.indexOf("?") + 1) : "";
      const who = await flow.finish(query, request.cookies[flow.cookieName]);
      if (who.role === undefined)
        app.logger.info(
          { component: "server", subject: who.subject, claim: who.claim },
          "server: the identity provider's role claim maps to no Ferry role; sign-in refused",
        );
      const signedIn = await app.stored.accounts
        .signInExternal({ issuer: who.issuer, subject: who.subject, name: who.name, role: who.role })
        .catch((error: unknown) => {
          if (who.role !== undefined || !isFerryError(error, "PERMISSION")) throw error;
          throw new FerryError(
            "PERMISSION",
            `the identity provider gives ${flow.config.roleClaim} = ${shown(who.claim)}, which maps to no Ferry role (server.auth.oidc.roles, default_role): ask the provider's admin for a role that does`,
            { subject: error.subject ?? who.name },
          );
        });
      setSessionCookie(reply, sessionCookie, signedIn.secret);
      request.identity = { user: signedIn.user, role: signedIn.user.role, via: "session" };
      return reply.redirect("/", 302);
    },
  );
};

/** A claim's value in a message: JSON, cut short. */
function shown(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

export default oidc;
