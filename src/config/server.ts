/**
 * `server:` of ferry.yaml: the HTTP API that `ferry serve` starts beside the syncs.
 *
 *     server:
 *       listen: 127.0.0.1:8080          # host:port ([::1]:8080 for IPv6; port 0: any free port)
 *       public_url: https://ferry.example.com   # what links and cookies use (default: from listen)
 *       tls: { cert_file: ./cert.pem, key_file: ./key.pem }
 *       trust_proxy: false              # true, a hop count, or addresses/CIDRs of the proxies
 *       auth:
 *         oidc:                         # sign-in through an identity provider (OpenID Connect)
 *           issuer: https://login.example.com/realms/lab
 *           client_id: ferry
 *           client_secret: ${OIDC_CLIENT_SECRET}
 *           role_claim: ferry_role      # the claim whose value gives the Ferry role
 *           roles: { lab-admins: admin, technicians: operator }   # claim value → role
 *           default_role: viewer        # for a claim that maps to no role (absent: refused)
 *           scopes: [openid, profile, ferry]
 */
import { statSync } from "node:fs";
import { z } from "zod";
import { Secret, secretString } from "../core/secret.ts";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigSource } from "./source.ts";

export const SERVER_KEYS = ["listen", "public_url", "tls", "trust_proxy", "auth"] as const;
export const AUTH_KEYS = ["oidc"] as const;
export const OIDC_KEYS = [
  "issuer",
  "client_id",
  "client_secret",
  "role_claim",
  "roles",
  "default_role",
  "scopes",
] as const;
export const DEFAULT_LISTEN = "127.0.0.1:8080";
export const DEFAULT_ROLE_CLAIM = "ferry_role";
export const DEFAULT_OIDC_SCOPES = ["openid", "profile"] as const;
/** src/auth/roles.ts ROLES (config does not import auth/; a test keeps the two equal). */
export const SERVER_ROLES = ["viewer", "user", "operator", "admin"] as const;
export type ServerRole = (typeof SERVER_ROLES)[number];

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ServerConfig {
  listen: ListenAddress;
  /** Without a trailing slash; absent: made from the address the server listens on. */
  publicUrl?: string;
  /** Absolute paths. */
  tls?: { certFile: string; keyFile: string };
  /** Fastify's trustProxy: whom to believe about the client's address (X-Forwarded-For). */
  trustProxy: boolean | number | string[];
  /** Sign-in through an OpenID Connect provider (`auth.oidc`), beside passwords and tokens. */
  oidc?: OidcConfig;
}

export interface OidcConfig {
  /** The provider's issuer URL, as its discovery document states it. */
  issuer: string;
  clientId: string;
  clientSecret: Secret;
  /** The ID token or userinfo claim whose value (a text or a list of texts) gives the role. */
  roleClaim: string;
  /** Claim value → role; absent: the claim's values are role names themselves. */
  roles?: Record<string, ServerRole>;
  /** The role of a user whose claim maps to none; absent: such a user is refused. */
  defaultRole?: ServerRole;
  /** Always with "openid". */
  scopes: string[];
}

/** http is for a provider on this machine only (tests, a local one); anywhere else, https. */
export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === "http:" && ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname.toLowerCase());
}

/** "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80" → host and port; a message saying what is wrong otherwise. */
export function parseListen(text: string): ListenAddress | string {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port))
    return `expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080, got "${text}"`;
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  return { host, port };
}

const listen = z
  .string()
  .default(DEFAULT_LISTEN)
  .transform((text, ctx) => {
    const parsed = parseListen(text);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

const publicUrl = z
  .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
  .refine((url) => !/[?#]/.test(url), "a public URL has no query or fragment")
  .transform((url) => url.replace(/\/+$/, ""));

const role = z.enum(SERVER_ROLES, { error: `expected one of ${SERVER_ROLES.join(", ")}` });

const oidcSchema = z.strictObject({
  issuer: z
    .url({ protocol: /^https?$/, error: "expected the provider's https:// issuer URL" })
    .refine(
      (text) => text.startsWith("https:") || isLoopbackHttp(new URL(text)),
      "an issuer must be https:// (http:// only on this machine: 127.0.0.1, [::1], localhost)",
    )
    .refine((text) => !/[?#]/.test(text), "an issuer URL has no query or fragment"),
  client_id: z.string().min(1, "must not be empty"),
  client_secret: secretString(),
  role_claim: z.string().min(1, "must not be empty").default(DEFAULT_ROLE_CLAIM),
  roles: z
    .record(z.string().min(1, "a claim value must not be empty"), role)
    .refine((map) => Object.keys(map).length > 0, "list at least one claim value, or leave roles out")
    .optional(),
  default_role: role.optional(),
  scopes: z
    .preprocess(
      (value) => (typeof value === "string" ? value.split(/[\s,]+/).filter((s) => s !== "") : value),
      z
        .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "a scope is one word"))
        .min(1, "list at least one scope, or leave scopes out"),
    )
    .optional(),
});

export const serverSchema = z.preprocess(
  // `server:` alone turns the server on with its defaults.
  (value) => value ?? {},
  z.strictObject({
    listen,
    public_url: publicUrl.optional(),
    tls: z
      .strictObject({
        cert_file: z.string().min(1, "must not be empty"),
        key_file: z.string().min(1, "must not be empty"),
      })
      .optional(),
    trust_proxy: z
      .union(
        [
          z.boolean(),
          z.number().int("a hop count is a whole number").min(1, "a hop count is at least 1"),
          z
            .string()
            .min(1)
            .transform((text) => text.split(",").map((s) => s.trim())),
          z.array(z.string().min(1)).min(1),
        ],
        { error: "expected true, false, a hop count, or the proxies' addresses (a list or comma-separated)" },
      )
      .default(false),
    auth: z.strictObject({ oidc: oidcSchema.optional() }).optional(),
  }),
);

type ParsedServer = z.output<typeof serverSchema>;

/** The typed server config; the TLS files must be readable files (a problem at their field otherwise). */
export function serverConfig(
  parsed: ParsedServer,
  resolvePath: (text: string) => string,
  source: ConfigSource,
  problems: ConfigProblem[],
): ServerConfig {
  let tls: ServerConfig["tls"];
  if (parsed.tls) {
    tls = { certFile: resolvePath(parsed.tls.cert_file), keyFile: resolvePath(parsed.tls.key_file) };
    for (const [key, file] of [
      ["cert_file", tls.certFile],
      ["key_file", tls.keyFile],
    ] as const) {
      const problem = fileProblem(file);
      if (problem) problems.push(source.problem(["server", "tls", key], problem));
    }
  }
  const oidc = parsed.auth?.oidc;
  return {
    listen: parsed.listen,
    ...(parsed.public_url === undefined ? {} : { publicUrl: parsed.public_url }),
    ...(tls ? { tls } : {}),
    trustProxy: parsed.trust_proxy,
    ...(oidc ? { oidc: oidcConfig(oidc) } : {}),
  };
}

function oidcConfig(parsed: NonNullable<NonNullable<ParsedServer["auth"]>["oidc"]>): OidcConfig {
  const scopes = parsed.scopes ?? [...DEFAULT_OIDC_SCOPES];
  return {
    issuer: parsed.issuer,
    clientId: parsed.client_id,
    clientSecret: parsed.client_secret,
    roleClaim: parsed.role_claim,
    ...(parsed.roles === undefined ? {} : { roles: parsed.roles }),
    ...(parsed.default_role === undefined ? {} : { defaultRole: parsed.default_role }),
    scopes: scopes.includes("openid") ? scopes : ["openid", ...scopes],
  };
}

function fileProblem(file: string): string | undefined {
  try {
    return statSync(file).isFile() ? undefined : `${file} is not a file`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${file} not found` : `cannot read ${file} (${code ?? String(error)})`;
  }
}
