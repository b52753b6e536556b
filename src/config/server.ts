/**
 * `server:` of ferry.yaml: the HTTP API that `ferry serve` starts beside the syncs.
 *
 *     server:
 *       listen: 127.0.0.1:8080          # host:port ([::1]:8080 for IPv6; port 0: any free port)
 *       public_url: https://ferry.example.com   # what links and cookies use (default: from listen)
 *       tls: { cert_file: ./cert.pem, key_file: ./key.pem }
 *       trust_proxy: false              # true, a hop count, or addresses/CIDRs of the proxies
 */
import { statSync } from "node:fs";
import { z } from "zod";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigSource } from "./source.ts";

export const SERVER_KEYS = ["listen", "public_url", "tls", "trust_proxy"] as const;
export const DEFAULT_LISTEN = "127.0.0.1:8080";

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
  return {
    listen: parsed.listen,
    ...(parsed.public_url === undefined ? {} : { publicUrl: parsed.public_url }),
    ...(tls ? { tls } : {}),
    trustProxy: parsed.trust_proxy,
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
