/**
 * The simulator's HTTP server and websocket: Moonraker's routes mapped to the face's methods (with
 * its argument parsing: query string with type hints, JSON body, the object parser of
 * /printer/objects/query), `{result}` wrapping, API-key authentication, downloads with ranges,
 * JSON-RPC 2.0 at /websocket and /server/jsonrpc, and `notify_status_update` pushes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { MoonrakerError } from "./errors.ts";
import type { Args, Connection, MoonrakerFace } from "./face.ts";
import { changedFields, pick, type KlippyState } from "./klipper.ts";
import { handleUpload, type UploadContext } from "./uploads.ts";

/** HTTP routes: "METHOD path" → JSON-RPC method. */
const ROUTES: Readonly<Record<string, string>> = {
  "GET /server/info": "server.info",
  "GET /printer/info": "printer.info",
  "GET /printer/objects/list": "printer.objects.list",
  "GET /printer/objects/query": "printer.objects.query",
  "POST /printer/objects/query": "printer.objects.query",
  "POST /printer/print/start": "printer.print.start",
  "POST /printer/print/pause": "printer.print.pause",
  "POST /printer/print/resume": "printer.print.resume",
  "POST /printer/print/cancel": "printer.print.cancel",
  "GET /server/files/list": "server.files.list",
  "GET /server/files/roots": "server.files.roots",
  "GET /server/files/metadata": "server.files.metadata",
  "GET /server/files/directory": "server.files.get_directory",
  "POST /server/files/directory": "server.files.post_directory",
  "DELETE /server/files/directory": "server.files.delete_directory",
  "GET /server/job_queue/status": "server.job_queue.status",
  "POST /server/job_queue/job": "server.job_queue.post_job",
  "DELETE /server/job_queue/job": "server.job_queue.delete_job",
  "POST /server/job_queue/pause": "server.job_queue.pause",
  "POST /server/job_queue/start": "server.job_queue.start",
  "POST /server/job_queue/jump": "server.job_queue.jump",
};

/** Methods only a websocket may call (identify, subscribe). */
const SOCKET_ONLY = new Set([
  "server.connection.identify",
  "server.websocket.id",
  "printer.objects.subscribe",
]);
/** Methods that need no authentication (websockets.py registers identify with auth_required=False). */
const OPEN_METHODS = new Set(["server.connection.identify"]);

/** How often Klipper reports changed objects to subscribers. */
const PUSH_INTERVAL_MS = 250;

export interface ServerContext {
  face: MoonrakerFace;
  uploads: UploadContext;
  /** The /_sim/ control API. */
  control(req: IncomingMessage, res: ServerResponse, route: string): Promise<void>;
}

interface SocketConnection extends Connection {
  ws: WebSocket;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=UTF-8",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(req: IncomingMessage, res: ServerResponse, error: MoonrakerError): void {
  const body = error.body();
  // Node's writeHead cannot carry a reason with line breaks; the body carries the text anyway.
  const reason = /^[\x20-\x7e]*$/.test(error.reason) ? error.reason : undefined;
  const headers = {
    "Content-Type": "application/json; charset=UTF-8",
    "Content-Length": Buffer.byteLength(body),
  };
  if (reason === undefined) res.writeHead(error.status, headers);
  else res.writeHead(error.status, reason, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}

async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new MoonrakerError(413, "Payload Too Large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A query value with Moonraker's type hints (`key:int`, `key:bool`, `key:float`, `key:json`). */
function typed(value: string, hint: string): unknown {
  try {
    switch (hint) {
      case "int":
        return Number.parseInt(value, 10);
      case "float":
        return Number.parseFloat(value);
      case "bool":
        return value.toLowerCase() === "true";
      case "json":
        return JSON.parse(value) as unknown;
      default:
        return value;
    }
  } catch {
    return value;
  }
}

/** Arguments from the query string (with hints, or the object parser) and a JSON body, body first. */
async function parseArgs(req: IncomingMessage, url: URL, objectParser: boolean): Promise<Args> {
  const args: Args = {};
  if (objectParser) {
    const objects: Record<string, string[] | null> = {};
    for (const [key, value] of url.searchParams) objects[key] = value === "" ? null : value.split(",");
    args.objects = objects;
  } else {
    for (const [key, value] of url.searchParams) {
      const colon = key.lastIndexOf(":");
      if (colon < 0) args[key] = value;
      else args[key.slice(0, colon)] = typed(value, key.slice(colon + 1));
    }
  }
  const body = await readBody(req);
  if ((req.headers["content-type"] ?? "").trim().startsWith("application/json") && body.length > 0) {
    try {
      const json = JSON.parse(body.toString("utf8")) as unknown;
      if (json !== null && typeof json === "object" && !Array.isArray(json)) Object.assign(args, json);
    } catch {
      // Moonraker ignores a body that is not JSON
    }
  }
  return args;
}

/** GET /server/files/gcodes/<path>: the file, or the asked range (Tornado's StaticFileHandler). */
function download(req: IncomingMessage, res: ServerResponse, ctx: ServerContext, path: string): void {
  const { face } = ctx;
  const parts = path.split("/").map((p) => decodeURIComponent(p));
  const node = face.storage.resolve(parts);
  if (!node) throw new MoonrakerError(404, "Not Found");
  if (node.kind !== "file") throw new MoonrakerError(403, `${parts.join("/")} is not a file`, "log");
  const content = node.content ?? Buffer.alloc(node.size);
  const size = node.size;
  let start = 0;
  let end = size;
  let status = 200;
  const headers: Record<string, string | number> = {
    "Content-Type": "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Last-Modified": new Date(node.mTimestamp * 1000).toUTCString(),
    "Content-Disposition": `attachment; filename="${node.name.replace(/[^\x20-\x7e]/g, "?").replace(/"/g, '\\"')}"; filename*=UTF-8''${encodeURIComponent(node.name)}`,
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
  if (range && (range[1] !== "" || range[2] !== "")) {
    if (range[1] === "") {
      start = Math.max(0, size - Number(range[2]));
    } else {
      start = Number(range[1]);
      if (range[2] !== "") end = Math.min(size, Number(range[2]) + 1);
    }
    if (start >= size || start >= end) {
      res.writeHead(416, {
        "Content-Type": "text/plain",
        "Content-Range": `bytes */${size}`,
        "Content-Length": 0,
      });
      res.end();
      return;
    }
    if (end - start !== size) {
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${end - 1}/${size}`;
    }
  }
  headers["Content-Length"] = end - start;
  res.writeHead(status, headers);
  res.end(req.method === "HEAD" ? undefined : content.subarray(start, end));
}

export class MoonrakerServer {
  readonly http: Server;
  readonly #ctx: ServerContext;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #connections = new Set<SocketConnection>();
  readonly #sockets = new Set<Socket>();
  /** Connections that carry the control API: they stay up while the host is "off the network". */
  readonly #controlSockets = new WeakSet<Socket>();
  #klippy: KlippyState;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: () => void;
  /** While true the host is off the network: every connection is reset. */
  down = false;

  constructor(ctx: ServerContext) {
    this.#ctx = ctx;
    const face = ctx.face;
    face.websocketCount = () => this.#connections.size;
    face.klippyChanged = () => {
      this.push();
    };
    this.#klippy = face.klippy();
    this.http = createServer({ requestTimeout: 0, keepAliveTimeout: 5000 }, (req, res) => {
      void this.#handle(req, res);
    });
    this.http.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    this.http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#upgrade(req, socket, head);
    });
    this.#unsubscribe = face.printer.onChange(() => {
      this.push();
    });
    // Klipper reports on its own interval; a print that finishes is noticed here too.
    this.#timer = setInterval(() => {
      face.printer.tick();
      this.push();
    }, PUSH_INTERVAL_MS);
    this.#timer.unref();
  }

  #authorized(req: IncomingMessage): boolean {
    const key = this.#ctx.face.options.apiKey;
    return key === undefined || req.headers["x-api-key"] === key;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const path = url.pathname;
    try {
      if (path.startsWith("/_sim/")) {
        this.#controlSockets.add(req.socket);
        await this.#ctx.control(req, res, path.slice("/_sim/".length));
        return;
      }
      if (this.down) {
        req.socket.destroy();
        return;
      }
      const failure = this.#ctx.face.printer.takeFailStatus();
      if (failure !== undefined)
        throw new MoonrakerError(failure, failure === 503 ? "Service Unavailable" : "Internal Server Error");
      if (!this.#authorized(req)) throw new MoonrakerError(401, "Unauthorized", "log");
      await this.#route(req, res, url);
    } catch (error) {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      sendError(req, res, MoonrakerError.of(error));
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const { face } = this.#ctx;
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    if (path === "/server/files/upload") {
      if (method !== "POST") throw new MoonrakerError(405, "Method Not Allowed");
      await handleUpload(req, res, this.#ctx.uploads);
      return;
    }
    if (path === "/server/jsonrpc" && method === "POST") {
      if (!(req.headers["content-type"] ?? "").startsWith("application/json"))
        throw new MoonrakerError(400, "Invalid content type, application/json required");
      const body = (await readBody(req)).toString("utf8");
      sendJson(res, 200, await this.#dispatch(body, undefined));
      return;
    }
    const file = /^\/server\/files\/(gcodes)\/(.+)$/.exec(path);
    if (file?.[2] !== undefined && !["list", "roots", "metadata", "directory"].includes(file[2])) {
      if (method === "GET" || method === "HEAD") {
        download(req, res, this.#ctx, file[2]);
        return;
      }
      if (method === "DELETE") {
        const relative = file[2]
          .split("/")
          .map((p) => decodeURIComponent(p))
          .join("/");
        try {
          sendJson(res, 200, { result: face.deleteFile(`gcodes/${relative}`) });
        } catch (error) {
          // The file handler raises Moonraker's text as Tornado's log message.
          const e = MoonrakerError.of(error);
          throw new MoonrakerError(e.status, e.message, "log");
        }
        return;
      }
      throw new MoonrakerError(405, "Method Not Allowed");
    }
    const rpc = ROUTES[`${method} ${path}`];
    if (rpc === undefined) {
      const known = Object.keys(ROUTES).some((key) => key.endsWith(` ${path}`));
      throw new MoonrakerError(known ? 405 : 404, known ? "Method Not Allowed" : "Not Found");
    }
    const args = await parseArgs(req, url, rpc === "printer.objects.query" && method === "GET");
    const result: unknown = await face.call(rpc, args, undefined);
    sendJson(res, 200, { result });
  }

  /** JSON-RPC 2.0 over a websocket (`conn`) or HTTP (undefined). */
  async #dispatch(text: string, conn: SocketConnection | undefined): Promise<unknown> {
    let request: { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
    try {
      request = JSON.parse(text) as typeof request;
    } catch {
      return { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null };
    }
    const id = typeof request.id === "number" || typeof request.id === "string" ? request.id : null;
    const fail = (code: number, message: string) => ({ jsonrpc: "2.0", error: { code, message }, id });
    if (request.jsonrpc !== "2.0") return fail(-32600, "Invalid Request");
    if (typeof request.method !== "string") return fail(-32600, "Invalid Request");
    const method = request.method;
    const { face } = this.#ctx;
    if (!face.has(method)) return fail(-32601, "Method not found");
    if (conn === undefined && SOCKET_ONLY.has(method))
      return fail(-32601, "Method not found for transport HTTP");
    const params: unknown = request.params ?? {};
    if (params === null || typeof params !== "object" || Array.isArray(params))
      return fail(-32602, "Invalid params:");
    try {
      if (conn?.needAuth === true && !OPEN_METHODS.has(method)) throw new MoonrakerError(401, "Unauthorized");
      const result: unknown = await face.call(method, params as Args, conn);
      return id === null ? undefined : { jsonrpc: "2.0", result, id };
    } catch (error) {
      return { jsonrpc: "2.0", error: MoonrakerError.of(error).rpc(), id };
    }
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (this.down || path !== "/websocket") {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: SocketConnection = {
        ws,
        uid: Math.floor(Math.random() * 2 ** 40),
        // Moonraker accepts the socket and refuses its calls until it authenticates.
        needAuth: !this.#authorized(req),
        identified: false,
        subscription: undefined,
        sent: {},
      };
      this.#connections.add(conn);
      ws.on("close", () => this.#connections.delete(conn));
      ws.on("message", (data: Buffer, binary) => {
        if (binary) return;
        void this.#dispatch(data.toString("utf8"), conn).then((answer) => {
          if (answer !== undefined && ws.readyState === ws.OPEN) ws.send(JSON.stringify(answer));
        });
      });
    });
  }

  #notify(conn: SocketConnection, method: string, params?: unknown[]): void {
    if (conn.needAuth || conn.ws.readyState !== conn.ws.OPEN) return;
    conn.ws.send(JSON.stringify({ jsonrpc: "2.0", method, ...(params ? { params } : {}) }));
  }

  /** Sends each subscriber the fields that changed, and Klippy's state changes to everyone. */
  push(): void {
    if (this.down) return;
    const { face } = this.#ctx;
    const klippy = face.klippy();
    if (klippy !== this.#klippy) {
      const previous = this.#klippy;
      this.#klippy = klippy;
      for (const conn of this.#connections) {
        if (klippy === "disconnected") {
          conn.subscription = undefined;
          this.#notify(conn, "notify_klippy_disconnected");
        } else if (klippy === "ready") this.#notify(conn, "notify_klippy_ready");
        else if (klippy === "shutdown") this.#notify(conn, "notify_klippy_shutdown");
        else if (previous === "disconnected") this.#notify(conn, "notify_klippy_disconnected");
      }
    }
    if (klippy === "disconnected") return;
    const all = face.objects();
    for (const conn of this.#connections) {
      if (!conn.subscription) continue;
      const now = pick(all, conn.subscription);
      const diff = changedFields(conn.sent, now);
      conn.sent = now;
      if (Object.keys(diff).length > 0) this.#notify(conn, "notify_status_update", [diff, face.eventtime()]);
    }
  }

  /** The host leaves the network: connections and websockets reset, new ones refused. */
  goDown(): void {
    this.down = true;
    for (const conn of this.#connections) conn.ws.terminate();
    for (const socket of this.#sockets) if (!this.#controlSockets.has(socket)) socket.destroy();
  }

  comeBack(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe();
    for (const conn of this.#connections) conn.ws.terminate();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    this.#wss.close();
  }
}
