/**
 * A real server for tests: an App on a fresh data folder (SQLite), the server on 127.0.0.1 port 0,
 * undici's fetch, and every log entry and announced line kept so tests can look for leaks.
 *
 *   const t = await startServer();  after(() => t.close());
 *   const admin = await t.tokenFor("admin");   // a user of that role with an API token
 *   const res = await t.fetch("/api/v1/me", { token: admin });
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fetch, type RequestInit, type Response } from "undici";
import { createApp, type App, type AppOptions } from "../app.ts";
import type { Role } from "../auth/roles.ts";
import { parseConfig } from "../config/index.ts";
import { FakeClock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { deviceKinds } from "../devices/devices.ts";
import { FerryServer, type ServerOptions } from "./server.ts";

export const PASSWORD = "a long enough password";

export interface TestServer {
  app: App;
  server: FerryServer;
  clock: FakeClock;
  /** Where the server listens (its public URL may differ). */
  url: string;
  /** Every log entry, as JSON text. */
  logs: string[];
  /** Lines the server announced (the setup link). */
  announced: string[];
  /** Every response body read through `fetch`/`json`. */
  bodies: string[];
  fetch(path: string, init?: TestRequest): Promise<Response>;
  /** fetch, then the status and the parsed body (kept in `bodies`); T is what the test expects. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller states the shape
  json<T = ProblemBody>(
    path: string,
    init?: TestRequest,
  ): Promise<{ status: number; body: T; response: Response }>;
  /** A new user of that role (named after the role unless given) with an API token of the same role. */
  tokenFor(role: Role, name?: string): Promise<string>;
  close(): Promise<void>;
}

/** A problem answer (src/server/problems.ts). */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  subject?: string;
  errors?: { path: string; message: string }[];
}

export interface UserBody {
  name: string;
  role: string;
  disabled: boolean;
  hasPassword: boolean;
  external: boolean;
}

/** The parts of the OpenAPI document the tests read. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Partial<Record<string, OpenApiOperation>>>;
}

export interface OpenApiOperation {
  "x-ferry-role"?: string;
  security?: unknown[];
  parameters?: { in: string; name: string }[];
  requestBody?: {
    content: Record<string, { schema: { additionalProperties?: unknown; required?: string[] } }>;
  };
}

export interface TestRequest extends Omit<RequestInit, "body" | "headers"> {
  token?: string;
  /** Sent as the Cookie header. */
  cookie?: string;
  headers?: Record<string, string>;
  /** JSON-encoded unless a string. */
  body?: unknown;
}

export async function startServer(
  options: ServerOptions & { yaml?: string; app?: Omit<AppOptions, "logger" | "clock"> } = {},
): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-server-"));
  const config = parseConfig(
    `data_dir: ./data\nserver:\n  listen: 127.0.0.1:0\n${options.yaml ?? ""}`,
    join(dir, "ferry.yaml"),
    // The same environment as the server's: ${VAR} in the yaml reads it.
    { deviceKinds, env: options.env ?? {} },
  );
  const logs: string[] = [];
  const clock = new FakeClock(Date.now());
  const app = await createApp(config, { ...options.app, logger: recordingLogger(logs), clock });
  await app.start();
  const announced: string[] = [];
  const server = await FerryServer.create(
    app,
    config.server ?? { listen: { host: "127.0.0.1", port: 0 }, trustProxy: false },
    {
      env: options.env ?? {},
      announce: (line) => announced.push(line),
      // The API alone unless a test serves a dashboard.
      dashboard: options.dashboard ?? null,
    },
  );
  await server.start();
  const address = server.fastify.server.address();
  if (typeof address !== "object" || address === null) throw new Error("the server has no address");
  const url = `http://127.0.0.1:${address.port}`;
  const bodies: string[] = [];
  const doFetch = (path: string, init: TestRequest = {}) => {
    const { token, cookie, body, headers, ...rest } = init;
    const all: Record<string, string> = { ...headers };
    if (token !== undefined) all.authorization = `Bearer ${token}`;
    if (cookie !== undefined) all.cookie = cookie;
    if (body !== undefined && typeof body !== "string") all["content-type"] ??= "application/json";
    return fetch(url + path, {
      ...rest,
      headers: all,
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
  };
  const t: TestServer = {
    app,
    server,
    clock,
    url,
    logs,
    announced,
    bodies,
    fetch: doFetch,
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as above
    async json<T>(path: string, init?: TestRequest) {
      const response = await doFetch(path, init);
      const text = await response.text();
      bodies.push(text);
      return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as T, response };
    },
    async tokenFor(role, name = role) {
      await app.stored.accounts.addUser({ name, role, password: PASSWORD });
      const { secret } = await app.stored.accounts.createToken({
        user: name,
        name: "test",
        role,
        expiresAt: null,
      });
      return secret;
    },
    async close() {
      await server.close();
      await app.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** A logger that keeps each entry (with its bindings) as JSON text. */
export function recordingLogger(into: string[], bindings: Record<string, unknown> = {}): Logger {
  const log =
    (level: string) =>
    (fieldsOrMessage: Record<string, unknown> | string, message?: string): void => {
      const fields = typeof fieldsOrMessage === "string" ? {} : fieldsOrMessage;
      const msg = typeof fieldsOrMessage === "string" ? fieldsOrMessage : message;
      into.push(JSON.stringify({ level, ...bindings, ...fields, msg }));
    };
  return {
    error: log("error"),
    warn: log("warn"),
    info: log("info"),
    debug: log("debug"),
    child: (more) => recordingLogger(into, { ...bindings, ...more }),
  };
}

/** The `name=value` part of a response's Set-Cookie for `name`, for sending back. */
export function cookieFrom(response: Response, name: string): string | undefined {
  const line = response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  return line?.split(";")[0];
}
