/**
 * Ferry's HTTP server (ADR 0017): Fastify with zod schemas, an OpenAPI 3.1 document made from
 * them (/api/openapi.json, browsable at /api/docs), one auth hook and one error handler. It is
 * given the App and registers every feature's routes over it (routes/all.ts); it builds nothing
 * of its own beyond what HTTP needs.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import { hostname } from "node:os";
import fastifyCookie from "@fastify/cookie";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteOptions,
} from "fastify";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { z } from "zod";
import type { App } from "../app.ts";
import type { ServerConfig } from "../config/index.ts";
import { FerryError } from "../core/errors.ts";
import { authenticate, CSRF_HEADER, sessionCookie } from "./auth.ts";
import { ServerMetrics } from "./metrics.ts";
import { OIDC_CALLBACK_PATH, OidcLogin } from "./oidc.ts";
import { errorHandler, notFoundHandler, problemSchema, validatorCompiler } from "./problems.ts";
import type { RouteRole } from "./route.ts";
import { ROUTES } from "./routes/all.ts";
import { SetupGate } from "./setup-gate.ts";

/** Largest request body (JSON): plenty for the API; uploads will set their own per route. */
export const BODY_LIMIT = 1024 * 1024;
/** On stop, requests in flight get this long before their connections are cut. */
export const CLOSE_GRACE_MS = 3_000;
export const DOCS_PREFIX = "/api/docs";
export const OPENAPI_PATH = "/api/openapi.json";
const VERSION = "0.1.0";
/** Where `npm run build` puts the dashboard (web/). */
export const DASHBOARD_DIR = fileURLToPath(new URL("../../web/dist", import.meta.url));
/** The dashboard's content security policy: its own scripts only; pictures may be cameras elsewhere. */
const DASHBOARD_CSP =
  "default-src 'self'; img-src 'self' data: blob: http: https:; style-src 'self' 'unsafe-inline'; " +
  "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export interface ServerOptions {
  /** Where FERRY_ADMIN_PASSWORD is read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Shows where it listens and the one-time setup link (default: lines on stderr; never through the logger). */
  announce?: (line: string) => void;
  /**
   * The dashboard's built assets, served at `/` (default DASHBOARD_DIR); null, or a folder without
   * index.html: none, the server answers the API only (and says so when it starts).
   */
  dashboard?: string | null;
}

export class FerryServer {
  readonly fastify: FastifyInstance;
  readonly #app: App;
  readonly #config: ServerConfig;
  readonly #options: ServerOptions;
  /** The dashboard's folder when it is served; null: API only. */
  readonly dashboard: string | null;
  readonly #wantedDashboard: string | null;
  readonly #setup = new SetupGate();
  readonly #closing = { now: false };
  #closed: Promise<void> | undefined;
  #url: string | undefined;

  private constructor(app: App, config: ServerConfig, options: ServerOptions) {
    this.#app = app;
    this.#config = config;
    this.#options = options;
    const dashboard = options.dashboard === undefined ? DASHBOARD_DIR : options.dashboard;
    this.dashboard = dashboard !== null && existsSync(`${dashboard}/index.html`) ? dashboard : null;
    this.#wantedDashboard = dashboard;
    this.fastify = build(app, config, this.#setup, this.#closing, () => this.url, this.dashboard);
  }

  /** Builds the server and its routes (throws naming a route that declares no role). */
  static async create(app: App, config: ServerConfig, options: ServerOptions = {}): Promise<FerryServer> {
    const server = new FerryServer(app, config, options);
    await server.fastify.ready();
    return server;
  }

  /** The address clients use: public_url, else the one it listens on. */
  get url(): string {
    if (this.#url === undefined) throw new Error("the server is not listening yet");
    return this.#url;
  }

  /** First-start setup (an admin from FERRY_ADMIN_PASSWORD, or a setup link), then listens. */
  async start(): Promise<string> {
    const { host, port } = this.#config.listen;
    try {
      await this.fastify.listen({ host, port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new FerryError(
        "UNAVAILABLE",
        `cannot listen on ${host}:${port}${code === "EADDRINUSE" ? ": the port is in use" : code === "EACCES" ? ": not allowed (ports below 1024 need privileges)" : `: ${String(error)}`} (server.listen or --listen)`,
        { cause: error, subject: "server.listen", retryable: false },
      );
    }
    const address = this.fastify.server.address();
    const bound = typeof address === "object" && address !== null ? address.port : port;
    this.#url = this.#config.publicUrl ?? defaultUrl(host, bound, this.#config.tls !== undefined);
    const env = this.#options.env ?? process.env;
    const announce = this.#options.announce ?? ((line: string) => process.stderr.write(line + "\n"));
    // The first admin exists before "listening" is said, so a client told so can sign in at once.
    const token = await this.#setup.open(this.#app.stored.accounts, env.FERRY_ADMIN_PASSWORD);
    announce(`ferry: server listening on ${this.#url} (API documents: ${this.#url}${DOCS_PREFIX})`);
    if (token !== undefined) {
      announce(
        `ferry: no admin yet: open ${this.#url}/setup?token=${token} to create one (this link works once), ` +
          "or restart with FERRY_ADMIN_PASSWORD set",
      );
    } else if (env.FERRY_ADMIN_PASSWORD) {
      this.#app.logger.info(
        { user: "admin" },
        "server: an admin exists (FERRY_ADMIN_PASSWORD is used only at the first start)",
      );
    }
    if (this.dashboard !== null) announce(`ferry: dashboard at ${this.#url}/`);
    else if (this.#wantedDashboard !== null)
      announce(
        `ferry: no dashboard (${this.#wantedDashboard}/index.html is missing; npm run build makes it): serving the API only`,
      );
    return this.#url;
  }

  /** Stops taking requests, lets those in flight finish (at most CLOSE_GRACE_MS), closes. Once. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing.now = true;
    const cut = setTimeout(() => this.fastify.server.closeAllConnections(), CLOSE_GRACE_MS);
    cut.unref();
    try {
      await this.fastify.close();
    } finally {
      clearTimeout(cut);
    }
  }
}

function defaultUrl(host: string, port: number, tls: boolean): string {
  const shown = host === "0.0.0.0" || host === "::" ? hostname() : host.includes(":") ? `[${host}]` : host;
  return `${tls ? "https" : "http"}://${shown}:${port}`;
}

function build(
  app: App,
  config: ServerConfig,
  setup: SetupGate,
  closing: { now: boolean },
  publicUrl: () => string,
  dashboard: string | null,
): FastifyInstance {
  const logger = app.logger.child({ component: "server" });
  const secure = config.tls !== undefined || config.publicUrl?.startsWith("https:") === true;
  const cookie = sessionCookie(secure);
  const oidc =
    config.oidc &&
    new OidcLogin(config.oidc, {
      clock: app.clock,
      redirectUri: () => publicUrl() + OIDC_CALLBACK_PATH,
      secure,
    });
  const https = config.tls && readTls(config.tls);
  // An https server is typed apart from an http one; the routes need neither's specifics.
  const fastify = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    trustProxy: trustProxy(config.trustProxy),
    // Request ids are the server's own, never taken from a client's header.
    requestIdHeader: false,
    // Slow clients cannot hold a connection with a request that never ends.
    requestTimeout: 60_000,
    ...(https ? { https } : {}),
  }) as unknown as FastifyInstance;
  const server = fastify.withTypeProvider<ZodTypeProvider>();
  server.setValidatorCompiler(validatorCompiler);
  server.setSerializerCompiler(serializerCompiler);
  server.setErrorHandler(errorHandler(logger));
  /** The dashboard's page, index.html, which routes its paths (/jobs, /printers/mk4-a) in the browser. */
  const sendPage = (request: FastifyRequest, reply: FastifyReply) =>
    readFile(join(dashboard ?? "", "index.html")).then(
      (html) =>
        reply
          .type("text/html; charset=utf-8")
          .header("cache-control", "no-cache")
          .header("content-security-policy", DASHBOARD_CSP)
          .header("x-content-type-options", "nosniff")
          .send(html),
      // Removed since the server started (a rebuild in progress): as if there were none.
      () => notFoundHandler(request, reply),
    );
  server.setNotFoundHandler((request, reply) => {
    // Never under /api or /health, whose unknown paths stay problems; nor a missing asset file.
    const path = request.url.split("?")[0] ?? "";
    const page =
      dashboard !== null &&
      (request.method === "GET" || request.method === "HEAD") &&
      !path.startsWith("/api/") &&
      path !== "/api" &&
      path !== "/health" &&
      !/\.[A-Za-z0-9]+$/.test(path);
    return page ? sendPage(request, reply) : notFoundHandler(request, reply);
  });
  server.decorateRequest("identity", null);

  // Every route must say who may call it: checked once all are registered.
  const routes: RouteOptions[] = [];
  server.addHook("onRoute", (route) => {
    routes.push(route);
  });
  server.addHook("onReady", (done) => {
    const missing = routes.filter((route) => route.config?.role === undefined);
    if (missing.length === 0) done();
    else
      done(
        new Error(
          `routes without config.role (src/server/route.ts): ${missing.map((r) => `${String(r.method)} ${r.url}`).join(", ")}`,
        ),
      );
  });

  void server.register(fastifyCookie);
  server.addHook("onRequest", authenticate(app.stored.accounts, cookie));
  // Answers sent while closing end their keep-alive connection, so the close need not wait for it.
  server.addHook("onSend", (_request, reply, payload, done) => {
    if (closing.now) reply.header("connection", "close");
    done(null, payload);
  });
  server.addHook("onResponse", async (request, reply) => {
    logger.debug(
      {
        request: request.id,
        method: request.method,
        // The path only: a query may carry a secret (the setup link's token).
        path: request.url.split("?")[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        ...(request.identity ? { user: request.identity.user.name } : {}),
      },
      "request",
    );
  });

  void server.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Ferry API",
        version: VERSION,
        description:
          "Every route but /health, sign-in (password, identity provider) and setup needs a caller: an API token (`Authorization: Bearer ferry_…`, or `X-Api-Key: ferry_…`) " +
          `or a session cookie from POST /api/v1/session, with \`X-CSRF-Token\` on changes. \`x-ferry-role\` names the least role a route needs ` +
          "(viewer < user < operator < admin). Errors are RFC 9457 problems (application/problem+json).",
      },
      components: {
        securitySchemes: {
          token: { type: "http", scheme: "bearer", description: "an API token, ferry_…" },
          apiKey: {
            type: "apiKey",
            in: "header",
            name: "X-Api-Key",
            description: "the same API token, where OctoPrint clients (slicers) send their key",
          },
          session: {
            type: "apiKey",
            in: "cookie",
            name: cookie.name,
            description: `with ${CSRF_HEADER} on changes`,
          },
        },
      },
    },
    transform: (input) => {
      const { schema, url } = jsonSchemaTransform(input);
      const role: RouteRole | undefined = input.route.config?.role;
      if (schema.hide === true || role === undefined) return { schema, url };
      const response = (schema.response ?? {}) as Record<string, unknown>;
      return {
        url,
        schema: {
          ...schema,
          "x-ferry-role": role,
          security: role === "public" ? [] : [{ token: [] }, { apiKey: [] }, { session: [] }],
          response: {
            ...response,
            "4XX": {
              description: "a problem (RFC 9457)",
              content: { "application/problem+json": { schema: PROBLEM_JSON } },
            },
          },
        },
      };
    },
    transformObject: jsonSchemaTransformObject,
  });

  // The API's own pages and documents are public and not in the document themselves.
  void server.register(async (docs) => {
    docs.addHook("onRoute", (route) => {
      route.config = { ...route.config, role: "public" };
    });
    await docs.register(fastifySwaggerUi, {
      routePrefix: DOCS_PREFIX,
      // Served from this server (swagger-ui-dist), nothing from elsewhere.
      staticCSP:
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
      uiConfig: { deepLinking: true },
    });
    docs.get(OPENAPI_PATH, { schema: { hide: true } }, () => docs.swagger());
  });

  const metrics = new ServerMetrics(app);
  server.addHook("onClose", (_instance, done) => {
    metrics.close();
    done();
  });
  if (dashboard !== null)
    void server.register(async (assets) => {
      assets.addHook("onRoute", (route) => {
        route.config = { ...route.config, role: "public" };
      });
      assets.get("/", { schema: { hide: true } }, sendPage);
      await assets.register(fastifyStatic, {
        root: dashboard,
        // index.html is answered by the page fallback (with its headers); hashed files never change.
        index: false,
        wildcard: true,
        // The build writes .br and .gz beside each script and style (scripts/build-web.ts).
        preCompressed: true,
        // Set below, per file (send's own would say max-age=0 for all).
        cacheControl: false,
        setHeaders: (response, file) => {
          response.setHeader(
            "cache-control",
            file.includes(join(dashboard, "assets")) ? "public, max-age=31536000, immutable" : "no-cache",
          );
          response.setHeader("x-content-type-options", "nosniff");
        },
      });
    });

  for (const routes of ROUTES)
    void server.register((scope, _options, done) => {
      routes(scope.withTypeProvider<ZodTypeProvider>(), { app, session: cookie, setup, oidc, metrics });
      done();
    });
  return fastify;
}

/** A hop count: trust that many proxies in front (Fastify takes it as a function). */
function trustProxy(setting: ServerConfig["trustProxy"]) {
  return typeof setting === "number" ? (_address: string, hop: number) => hop < setting : setting;
}

const PROBLEM_JSON = z.toJSONSchema(problemSchema, { target: "draft-2020-12" });

function readTls(tls: NonNullable<ServerConfig["tls"]>): { cert: Buffer; key: Buffer } {
  const read = (file: string, field: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new FerryError(
        "UNAVAILABLE",
        `server.tls.${field}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        {
          subject: `server.tls.${field}`,
          retryable: false,
        },
      );
    }
  };
  return { cert: read(tls.certFile, "cert_file"), key: read(tls.keyFile, "key_file") };
}
