/**
 * API tokens: everyone manages their own, admins everyone's. A token's role is at most its
 * owner's and at most the caller's (a viewer token cannot mint an admin token). The token itself
 * is in the creation's answer only.
 */
import { z } from "zod";
import { roleAllows } from "../../auth/roles.ts";
import { parseDuration } from "../../config/index.ts";
import { FerryError } from "../../core/errors.ts";
import { HttpProblem } from "../problems.ts";
import { accountName, identityOf, roleSchema, type FerryRoutes } from "../route.ts";
import { tokenSchema, tokenView } from "./schemas.ts";

export const DEFAULT_TOKEN_LIFETIME = "90d";

const expires = z
  .string()
  .default(DEFAULT_TOKEN_LIFETIME)
  .refine(
    (text) => text === "never" || (parseDuration(text) ?? 0) > 0,
    'a duration such as "30d", "12h", or "never"',
  )
  .describe('how long the token works: "30d", "12h", ... or "never" (default 90d)');

const tokens: FerryRoutes = (server, { app }) => {
  const accounts = app.stored.accounts;

  server.get(
    "/api/v1/tokens",
    {
      config: { role: "viewer" },
      schema: {
        summary: "API tokens: your own, or (admins) everyone's or one user's",
        tags: ["tokens"],
        querystring: z.strictObject({ user: accountName.optional() }),
        response: { 200: z.array(tokenSchema) },
      },
    },
    async (request) => {
      const caller = identityOf(request);
      const admin = roleAllows(caller.role, "admin");
      const user = request.query.user ?? (admin ? undefined : caller.user.name);
      if (!admin && user !== caller.user.name)
        throw new HttpProblem(403, "forbidden", "Forbidden", "only admins see other users' tokens");
      return (await accounts.listTokens(user)).map(tokenView);
    },
  );

  server.post(
    "/api/v1/tokens",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Create an API token (shown once, in this answer)",
        tags: ["tokens"],
        body: z.strictObject({
          name: accountName,
          role: roleSchema.optional().describe("default: the owner's role (at most the caller's)"),
          user: accountName.optional().describe("the owner (admins only; default: the caller)"),
          expires,
        }),
        response: {
          201: z.object({
            token: tokenSchema,
            secret: z.string().describe("Authorization: Bearer <secret>; not shown again"),
          }),
        },
      },
    },
    async (request, reply) => {
      const caller = identityOf(request);
      const body = request.body;
      const owner = body.user ?? caller.user.name;
      if (owner !== caller.user.name && !roleAllows(caller.role, "admin"))
        throw new HttpProblem(403, "forbidden", "Forbidden", "only admins create tokens for other users", {
          subject: "user",
        });
      const ownerUser = await accounts.getUser(owner);
      if (!ownerUser) throw new FerryError("NOT_FOUND", `no user named "${owner}"`, { subject: "user" });
      const role = body.role ?? (roleAllows(caller.role, ownerUser.role) ? ownerUser.role : caller.role);
      if (!roleAllows(caller.role, role))
        throw new HttpProblem(
          403,
          "forbidden",
          "Forbidden",
          `you act as ${caller.role} and cannot create a token with the role ${role}`,
          { subject: "role" },
        );
      const seconds = body.expires === "never" ? undefined : parseDuration(body.expires);
      const created = await accounts.createToken({
        user: owner,
        name: body.name,
        role,
        expiresAt: seconds === undefined ? null : app.clock.now() + seconds * 1000,
      });
      return reply.code(201).send({ token: tokenView(created.token), secret: created.secret });
    },
  );

  server.delete(
    "/api/v1/tokens/:id",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Revoke an API token (yours; admins: anyone's)",
        tags: ["tokens"],
        params: z.strictObject({ id: z.string().regex(/^[0-9a-f]{16}$/, "a token id is 16 hex digits") }),
      },
    },
    async (request, reply) => {
      const caller = identityOf(request);
      const token = await accounts.getToken(request.params.id);
      // Someone else's token is "not found" to a non-admin: ids are not to be probed.
      if (!token || (token.user !== caller.user.name && !roleAllows(caller.role, "admin")))
        throw new FerryError("NOT_FOUND", `no token ${request.params.id}`);
      await accounts.revokeToken(token.id);
      return reply.code(204).send();
    },
  );
};

export default tokens;
