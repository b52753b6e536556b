/**
 * `opcua:` of ferry.yaml: the farm's printers in OPC UA, two ways, either or both.
 *
 *     opcua:
 *       mirror:                             # Ferry writes into the lab's OPC UA server
 *         endpoint: opc.tcp://lab-server:4840
 *         security_mode: SignAndEncrypt     # None (default) | Sign | SignAndEncrypt
 *         security_policy: Basic256Sha256   # default: None with mode None, else Basic256Sha256
 *         username: ferry                   # or certificate + private_key (an X.509 user), or neither (anonymous)
 *         password: ${OPCUA_PASSWORD}
 *         namespace: urn:ferry:printers     # where missing nodes are made
 *         folder: Lab/Printers              # under Objects (default: the printers' folders right under Objects)
 *         names: { mk4-a: Printer1 }        # a printer's folder name on the server (default: its name)
 *         interval: 1s                      # temperatures are written this often at most
 *       server:                             # Ferry's own OPC UA server
 *         port: 4840
 *         host: 0.0.0.0                     # default 127.0.0.1
 *         security_modes: [None, SignAndEncrypt]
 *         security_policies: [Basic256Sha256]
 *         anonymous: false                  # true: anonymous sessions may read (never call methods)
 */
import { statSync } from "node:fs";
import { z } from "zod";
import { Secret, secretString } from "../core/secret.ts";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigSource } from "./source.ts";

export const OPCUA_KEYS = ["mirror", "server"] as const;
export const OPCUA_MIRROR_KEYS = [
  "endpoint",
  "security_mode",
  "security_policy",
  "username",
  "password",
  "certificate",
  "private_key",
  "namespace",
  "folder",
  "names",
  "interval",
] as const;
export const OPCUA_SERVER_KEYS = [
  "port",
  "host",
  "security_modes",
  "security_policies",
  "anonymous",
] as const;

export const SECURITY_MODES = ["None", "Sign", "SignAndEncrypt"] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number];
/** The policies node-opcua offers that are not deprecated (Basic128Rsa15 and Basic256 are). */
export const SECURITY_POLICIES = [
  "None",
  "Basic256Sha256",
  "Aes128_Sha256_RsaOaep",
  "Aes256_Sha256_RsaPss",
] as const;
export type SecurityPolicy = (typeof SECURITY_POLICIES)[number];

export const DEFAULT_OPCUA_NAMESPACE = "urn:ferry:printers";
export const DEFAULT_OPCUA_PORT = 4840;
export const DEFAULT_OPCUA_HOST = "127.0.0.1";
export const DEFAULT_MIRROR_INTERVAL_S = 1;

export type MirrorIdentity =
  | { type: "anonymous" }
  | { type: "username"; username: string; password: Secret }
  /** Absolute paths of PEM files. */
  | { type: "certificate"; certificateFile: string; privateKeyFile: string };

export interface OpcuaMirrorConfig {
  endpoint: string;
  securityMode: SecurityMode;
  securityPolicy: SecurityPolicy;
  identity: MirrorIdentity;
  namespace: string;
  /** Browse names under Objects, outermost first; empty: right under Objects. */
  folder: string[];
  /** Printer → its folder's name on the server. */
  names: Record<string, string>;
  intervalS: number;
}

export interface OpcuaServerConfig {
  port: number;
  host: string;
  securityModes: SecurityMode[];
  securityPolicies: SecurityPolicy[];
  anonymous: boolean;
}

export interface OpcuaConfig {
  mirror?: OpcuaMirrorConfig;
  server?: OpcuaServerConfig;
}

const mode = z.enum(SECURITY_MODES, { error: `expected one of ${SECURITY_MODES.join(", ")}` });
const policy = z.enum(SECURITY_POLICIES, { error: `expected one of ${SECURITY_POLICIES.join(", ")}` });
const toList = (value: unknown): unknown => (typeof value === "string" ? [value] : value);
const browseName = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .refine((name) => !/[/:]/.test(name), 'a name on the OPC UA server has no "/" or ":"');

const interval = z
  .union([z.number(), z.string()])
  .optional()
  .transform((value, ctx) => {
    if (value === undefined) return DEFAULT_MIRROR_INTERVAL_S;
    const text = String(value).trim();
    const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text);
    const seconds = match ? Number(match[1]) * (match[2] === "ms" ? 0.001 : 1) : Number.NaN;
    if (!(seconds >= 0.1 && seconds <= 3600)) {
      ctx.addIssue({ code: "custom", message: 'expected a duration from 100ms to 3600s, such as "1s"' });
      return z.NEVER;
    }
    return seconds;
  });

const mirrorSchema = z
  .strictObject({
    endpoint: z
      .string()
      .regex(/^opc\.tcp:\/\/[^/\s]+(\/\S*)?$/, "expected an OPC UA endpoint such as opc.tcp://host:4840"),
    security_mode: mode.default("None"),
    security_policy: policy.optional(),
    username: z.string().min(1, "must not be empty").optional(),
    password: secretString().optional(),
    certificate: z.string().min(1, "must not be empty").optional(),
    private_key: z.string().min(1, "must not be empty").optional(),
    namespace: z.string().trim().min(1, "must not be empty").default(DEFAULT_OPCUA_NAMESPACE),
    folder: z
      .string()
      .default("")
      .transform((text) => text.split("/").filter((part) => part.trim() !== ""))
      .pipe(z.array(browseName)),
    names: z.record(z.string(), browseName).default({}),
    interval,
  })
  .superRefine((mirror, ctx) => {
    if ((mirror.username === undefined) !== (mirror.password === undefined))
      ctx.addIssue({
        code: "custom",
        path: [mirror.username === undefined ? "username" : "password"],
        message: "username and password go together",
      });
    if ((mirror.certificate === undefined) !== (mirror.private_key === undefined))
      ctx.addIssue({
        code: "custom",
        path: [mirror.certificate === undefined ? "certificate" : "private_key"],
        message: "certificate and private_key go together",
      });
    if (mirror.username !== undefined && mirror.certificate !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["certificate"],
        message: "sign in with a username or with a certificate, not both",
      });
    const policy = mirror.security_policy;
    if (mirror.security_mode === "None" && policy !== undefined && policy !== "None")
      ctx.addIssue({
        code: "custom",
        path: ["security_policy"],
        message: `security_mode None takes no security policy; set security_mode Sign or SignAndEncrypt for ${policy}`,
      });
    if (mirror.security_mode !== "None" && policy === "None")
      ctx.addIssue({
        code: "custom",
        path: ["security_policy"],
        message: `security_mode ${mirror.security_mode} needs a security policy other than None`,
      });
  });

const serverSchema = z.preprocess(
  (value) => value ?? {},
  z.strictObject({
    port: z
      .number()
      .int("must be a whole number")
      .min(0, "a port is 0-65535")
      .max(65535, "a port is 0-65535")
      .default(DEFAULT_OPCUA_PORT),
    host: z.string().trim().min(1, "must not be empty").default(DEFAULT_OPCUA_HOST),
    security_modes: z
      .preprocess(toList, z.array(mode).min(1, "list at least one mode"))
      .default(["None", "Sign", "SignAndEncrypt"]),
    security_policies: z
      .preprocess(toList, z.array(policy.exclude(["None"])).min(1, "list at least one policy"))
      .default(["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]),
    anonymous: z.boolean().default(false),
  }),
);

export const opcuaSchema = z.preprocess(
  (value) => value ?? {},
  z.strictObject({ mirror: mirrorSchema.optional(), server: serverSchema.optional() }),
);

type ParsedOpcua = z.output<typeof opcuaSchema>;

/** The typed `opcua:`; the certificate files must be readable (a problem at their field otherwise). */
export function opcuaConfig(
  parsed: ParsedOpcua,
  resolvePath: (text: string) => string,
  source: ConfigSource,
  problems: ConfigProblem[],
): OpcuaConfig {
  const out: OpcuaConfig = {};
  const mirror = parsed.mirror;
  if (mirror) {
    let identity: MirrorIdentity = { type: "anonymous" };
    if (mirror.username !== undefined && mirror.password !== undefined)
      identity = { type: "username", username: mirror.username, password: mirror.password };
    if (mirror.certificate !== undefined && mirror.private_key !== undefined) {
      identity = {
        type: "certificate",
        certificateFile: resolvePath(mirror.certificate),
        privateKeyFile: resolvePath(mirror.private_key),
      };
      for (const [key, file] of [
        ["certificate", identity.certificateFile],
        ["private_key", identity.privateKeyFile],
      ] as const) {
        const problem = fileProblem(file);
        if (problem) problems.push(source.problem(["opcua", "mirror", key], problem));
      }
    }
    out.mirror = {
      endpoint: mirror.endpoint,
      securityMode: mirror.security_mode,
      securityPolicy: mirror.security_policy ?? (mirror.security_mode === "None" ? "None" : "Basic256Sha256"),
      identity,
      namespace: mirror.namespace,
      folder: mirror.folder,
      names: mirror.names,
      intervalS: mirror.interval,
    };
  }
  const server = parsed.server;
  if (server) {
    out.server = {
      port: server.port,
      host: server.host,
      securityModes: [...new Set(server.security_modes)],
      securityPolicies: [...new Set(server.security_policies)],
      anonymous: server.anonymous,
    };
  }
  return out;
}

function fileProblem(file: string): string | undefined {
  try {
    return statSync(file).isFile() ? undefined : `${file} is not a file`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${file} not found` : `cannot read ${file} (${code ?? String(error)})`;
  }
}
