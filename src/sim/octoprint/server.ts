/**
 * The simulator's HTTP server: OctoPrint's routes, its API key check (X-Api-Key, Bearer or
 * `?apikey=`; a missing or wrong key is an anonymous request, which every API route refuses with
 * 403), injected faults (answered by the reverse proxy in front of OctoPrint, as OctoPi's haproxy
 * does), and its error bodies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { handleControl, type ControlContext } from "./control.ts";
import { handleDownload, handleFiles, storageListing, type FilesContext } from "./files-api.ts";
import { abort, sendApiError, sendJson, sendTornadoError, SimHttpError } from "./http.ts";
import {
  handleConnection,
  handleJob,
  handlePrinter,
  handlePrompt,
  type PrinterApiContext,
} from "./printer-api.ts";

export interface SimServerContext {
  files: FilesContext;
  printerApi: PrinterApiContext;
  control: ControlContext;
  apiKey: string;
  version: string;
}

/** The API key of a request, looked for where OctoPrint looks (`get_api_key`): values, X-Api-Key, Bearer. */
function apiKeyOf(req: IncomingMessage, url: URL, form?: Map<string, string>): string | undefined {
  const fromValues = url.searchParams.get("apikey") ?? form?.get("apikey");
  if (fromValues !== undefined) return fromValues;
  const header = req.headers["x-api-key"];
  if (typeof header === "string") return header;
  const authorization = req.headers.authorization;
  if (authorization?.startsWith("Bearer ")) return authorization.slice("Bearer ".length);
  return undefined;
}

function isMultipartUpload(req: IncomingMessage, pathname: string): boolean {
  return (
    req.method === "POST" &&
    /^\/api\/files\/[^/]+\/?$/.test(pathname) &&
    (req.headers["content-type"] ?? "").toLowerCase().startsWith("multipart/")
  );
}

async function api(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: SimServerContext,
  url: URL,
): Promise<void> {
  const pathname = url.pathname;
  const check = (form?: Map<string, string>) => {
    authorize(req, ctx, url, form);
  };
  // An upload's body is read (into Tornado's temp files) before Flask checks who sent it.
  if (!isMultipartUpload(req, pathname)) check();
  if (pathname.startsWith("/api/files/")) {
    return handleFiles(req, res, ctx.files, pathname.slice("/api/files/".length), check);
  }
  switch (pathname) {
    case "/api/version":
      if (req.method !== "GET") throw abort(405);
      return sendJson(res, 200, { api: "0.1", server: ctx.version, text: `OctoPrint ${ctx.version}` });
    case "/api/server":
      if (req.method !== "GET") throw abort(405);
      return sendJson(res, 200, { version: ctx.version, safemode: null });
    case "/api/files":
      if (req.method !== "GET") throw abort(405);
      return sendJson(res, 200, storageListing(ctx.files, req));
    case "/api/connection":
      return handleConnection(req, res, ctx.printerApi);
    case "/api/printer":
      return handlePrinter(req, res, ctx.printerApi);
    case "/api/job":
      return handleJob(req, res, ctx.printerApi);
    case "/api/plugin/action_command_prompt":
      return handlePrompt(req, res, ctx.printerApi);
    default:
      throw abort(404);
  }
}

function authorize(req: IncomingMessage, ctx: SimServerContext, url: URL, form?: Map<string, string>): void {
  if (apiKeyOf(req, url, form) !== ctx.apiKey) throw abort(403);
}

/** What OctoPi's haproxy answers while OctoPrint is down or restarting. */
function sendProxyError(res: ServerResponse, status: number): void {
  const title = status === 503 ? "Service Unavailable" : "Internal Server Error";
  const body = `<html><body><h1>${status} ${title}</h1>\nNo server is available to handle this request.\n</body></html>\n`;
  res.writeHead(status, {
    "Content-Type": "text/html",
    "Content-Length": Buffer.byteLength(body),
    Connection: "close",
  });
  res.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: SimServerContext): Promise<void> {
  const url = new URL(req.url ?? "/", "http://sim");
  const { pathname } = url;
  const isApi = pathname === "/api" || pathname.startsWith("/api/");
  try {
    if (pathname.startsWith("/_sim/")) {
      await handleControl(req, res, ctx.control, pathname.slice("/_sim/".length));
      return;
    }
    // A host that left the network answers nothing: the connection is reset.
    if (!ctx.control.octo.printer.connected) {
      req.socket.destroy();
      return;
    }
    const failure = ctx.control.octo.printer.takeFailStatus();
    if (failure !== undefined) {
      req.resume();
      sendProxyError(res, failure);
      return;
    }
    if (isApi) {
      await api(req, res, ctx, url);
      return;
    }
    const DOWNLOADS = "/downloads/files/local/";
    if (pathname.startsWith(DOWNLOADS)) {
      authorize(req, ctx, url);
      handleDownload(req, res, ctx.files, pathname.slice(DOWNLOADS.length));
      return;
    }
    throw abort(404);
  } catch (error) {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const answer = SimHttpError.of(error);
    // A refused request whose body was not read is answered and the connection closed.
    const unread =
      !req.complete &&
      (req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined);
    if (unread) req.resume();
    if (isApi) sendApiError(res, answer, unread);
    else sendTornadoError(req, res, answer);
  }
}

export function createSimServer(ctx: SimServerContext): Server {
  return createServer({ requestTimeout: 0, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res, ctx);
  });
}
