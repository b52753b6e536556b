/** The simulator's HTTP server: routing, fault injection, authentication, error answers. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { handleControl } from "./control.ts";
import type { DigestGuard } from "./digest.ts";
import { handleDownload, handleFiles, type FilesContext } from "./files-api.ts";
import { sendEmpty, sendError, sendJson, SimHttpError } from "./http-util.ts";
import type { VirtualPrinter } from "../printer/index.ts";
import { infoJson, jobJson, statusJson, storageJson, transferJson, versionJson } from "./wire.ts";

export interface SimServerContext {
  printer: VirtualPrinter;
  guard: DigestGuard;
  files: FilesContext;
  name: string;
  port(): number;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? "0") > 0;
}

function jobRoute(
  req: IncomingMessage,
  res: ServerResponse,
  printer: VirtualPrinter,
  pathname: string,
): boolean {
  const m = /^\/api\/v1\/job\/(\d+)(?:\/(pause|resume))?$/.exec(pathname);
  if (!m) return false;
  const id = Number(m[1]);
  const action = m[2];
  const job = printer.job;
  if (job?.id !== id) throw new SimHttpError(404, "Not Found", `no job ${id}`);
  if (action === undefined && req.method === "DELETE") printer.cancel();
  else if (action === "pause" && req.method === "PUT") printer.pause();
  else if (action === "resume" && req.method === "PUT") printer.resume();
  else throw new SimHttpError(405, "Method Not Allowed", `${req.method ?? "?"} ${pathname}`);
  sendEmpty(res, 204);
  return true;
}

async function api(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: SimServerContext,
  pathname: string,
): Promise<void> {
  const { printer } = ctx;
  // A disconnected printer answers nothing: the connection is reset, as when it left the network.
  if (!printer.connected) {
    req.socket.destroy();
    return;
  }
  const failure = printer.takeFailStatus();
  if (failure !== undefined) {
    throw new SimHttpError(
      failure,
      failure === 503 ? "Service Unavailable" : "Internal Server Error",
      "injected fault",
    );
  }
  ctx.guard.check(req);

  const FILES = "/api/v1/files/";
  if (pathname.startsWith(FILES)) {
    await handleFiles(req, res, ctx.files, pathname.slice(FILES.length));
    return;
  }
  const RAW = "/api/files/";
  if (pathname.startsWith(RAW) && pathname.endsWith("/raw")) {
    handleDownload(req, res, ctx.files, pathname.slice(RAW.length, -"/raw".length));
    return;
  }
  if (jobRoute(req, res, printer, pathname)) return;
  if (req.method !== "GET")
    throw new SimHttpError(405, "Method Not Allowed", `${req.method ?? "?"} ${pathname}`);
  const body = getJson(ctx, pathname);
  if (body === undefined) sendEmpty(res, 204);
  else sendJson(res, 200, body);
}

/** The JSON of a GET endpoint; undefined means 204 No Content. */
function getJson(ctx: SimServerContext, pathname: string): unknown {
  const { printer } = ctx;
  switch (pathname) {
    case "/api/version":
      return versionJson(printer, ctx.name);
    case "/api/v1/info":
      return infoJson(printer, ctx.name, ctx.port());
    case "/api/v1/status":
      return statusJson(printer);
    case "/api/v1/storage":
      return { storage_list: printer.storages.map(storageJson) };
    case "/api/v1/job": {
      const job = printer.job;
      return job && jobJson(printer, job);
    }
    case "/api/v1/transfer": {
      const transfer = printer.transfer;
      return transfer && transferJson(printer, transfer);
    }
    default:
      throw new SimHttpError(404, "Not Found", `no route ${pathname}`);
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: SimServerContext): Promise<void> {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  const pathname = query < 0 ? url : url.slice(0, query);
  try {
    if (pathname.startsWith("/_sim/")) {
      await handleControl(req, res, ctx.printer, ctx.name, pathname.slice("/_sim/".length));
    } else {
      await api(req, res, ctx, pathname);
    }
  } catch (error) {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const answer = SimHttpError.of(error);
    // A refused upload is answered at once and the connection dropped, as the printer does.
    sendError(req, res, answer, hasBody(req) && !req.complete);
  }
}

export function createSimServer(ctx: SimServerContext): Server {
  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res, ctx);
  });
  return server;
}
