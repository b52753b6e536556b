/** Response shapes shared by the account routes: what may be shown of users and tokens. */
import { z } from "zod";
import type { ApiToken, User } from "../../auth/accounts.ts";
import { isoTime, roleSchema } from "../route.ts";

export const userSchema = z
  .object({
    name: z.string(),
    role: roleSchema,
    disabled: z.boolean(),
    hasPassword: z
      .boolean()
      .describe("false: signs in with API tokens only, or through the identity provider"),
    external: z
      .boolean()
      .describe("signs in through the identity provider (OpenID Connect), whose claim sets the role"),
    createdAt: z.string(),
  })
  .meta({ id: "User" });

export const tokenSchema = z
  .object({
    id: z.string().describe("the public part of the token, ferry_<id>_…"),
    name: z.string(),
    user: z.string(),
    role: roleSchema,
    createdAt: z.string(),
    expiresAt: z.string().nullable().describe("null: never"),
    lastUsedAt: z.string().nullable(),
  })
  .meta({ id: "ApiToken" });

export function userView(user: User): z.output<typeof userSchema> {
  return {
    name: user.name,
    role: user.role,
    disabled: user.disabled,
    hasPassword: user.hasPassword,
    external: user.external,
    createdAt: isoTime(user.createdAt),
  };
}

export function tokenView(token: ApiToken): z.output<typeof tokenSchema> {
  return {
    id: token.id,
    name: token.name,
    user: token.user,
    role: token.role,
    createdAt: isoTime(token.createdAt),
    expiresAt: token.expiresAt === null ? null : isoTime(token.expiresAt),
    lastUsedAt: token.lastUsedAt === null ? null : isoTime(token.lastUsedAt),
  };
}
