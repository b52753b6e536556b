/**
 * The simulator's HTTP server: the upload form (GET shows it, POST takes an upload), the page of
 * an uploaded log, and the control API under /_sim/.
 */
import { randomUUID, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import { join } from "node:path";
import { z } from "zod";
import { parseForm, type ParsedForm } from "./form-parser.ts";
import { escapeHtml, page, send, sendError, sendJson, SimHttpError } from "./http.ts";
import type { FormSite, ReceivedUpload } from "./site.ts";

const TITLES: Record<number, string> = {
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

function checkAuth(req: IncomingMessage, site: FormSite): void {
  const credentials = site.config.credentials;
  if (!credentials) return;
  const header = req.headers.authorization ?? "";
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  const given = Buffer.from(match ? Buffer.from(match[1] ?? "", "base64").toString("utf8") : "");
  const wanted = Buffer.from(`${credentials.username}:${credentials.password}`);
  if (given.length === wanted.length && timingSafeEqual(given, wanted)) return;
  throw new SimHttpError(
    401,
    "Unauthorized",
    header === "" ? "this form needs a user name and password" : "wrong user name or password",
    { "WWW-Authenticate": 'Basic realm="upload", charset="UTF-8"' },
  );
}

const discard = (form: ParsedForm) =>
  form.file?.tempPath === undefined ? Promise.resolve() : rm(form.file.tempPath, { force: true });

async function upload(req: IncomingMessage, res: ServerResponse, site: FormSite): Promise<void> {
  const { config } = site;
  const status = site.takeStatus();
  if (status !== undefined)
    throw new SimHttpError(status, TITLES[status] ?? "Error", "injected fault", { "Retry-After": "1" });
  checkAuth(req, site);
  if (!/^multipart\/form-data\s*;/i.test(req.headers["content-type"] ?? "")) {
    throw new SimHttpError(400, "Bad Request", "the upload must be multipart/form-data");
  }
  const lengthHeader = req.headers["content-length"];
  const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
  if (config.maxSize !== undefined && contentLength !== undefined && contentLength > config.maxSize) {
    throw new SimHttpError(
      413,
      "Payload Too Large",
      `${contentLength} bytes is over this site's limit of ${config.maxSize} bytes`,
    );
  }
  const resetAfter = site.takeResetAfterBytes();
  const form = await parseForm(req, {
    fileField: config.fileField,
    dir: config.dir,
    storeContent: config.storeContent,
    maxSize: config.maxSize,
    ...(resetAfter === undefined
      ? {}
      : {
          onBytes: (total: number) => {
            if (total >= resetAfter) req.socket.destroy();
          },
        }),
  });
  const file = form.file;
  if (!file) {
    throw new SimHttpError(400, "Bad Request", `no file in the upload (field "${config.fileField}")`);
  }
  const missing = config.requiredFields.filter((name) => (form.fields[name] ?? "").trim() === "");
  if (missing.length > 0) {
    await discard(form);
    throw new SimHttpError(400, "Bad Request", `missing field: ${missing.join(", ")}`);
  }
  const errorText = site.takeErrorText();
  if (errorText !== undefined) {
    // Some sites report a refused upload on an ordinary 200 page.
    await discard(form);
    send(res, 200, page("Upload", `<h1>Upload</h1>\n<p class="error">${escapeHtml(errorText)}</p>`));
    return;
  }
  const id = randomUUID();
  let stored: string | undefined;
  if (file.tempPath !== undefined) {
    stored = join(config.dir, id);
    await rename(file.tempPath, stored);
  }
  site.add({
    id,
    filename: file.filename,
    field: file.field,
    contentType: file.contentType,
    fields: form.fields,
    size: file.size,
    sha256: file.sha256,
    receivedAt: config.clock(),
    contentLength,
    bodyBytes: form.bodyBytes,
    file: stored,
  });
  const location = `/plot_app?log=${id}`;
  if (config.answer === "json") sendJson(res, 200, { url: location });
  else send(res, config.redirectStatus, "", { Location: location });
}

function formPage(site: FormSite): string {
  const { path, fileField, requiredFields } = site.config;
  const inputs = ["description", ...requiredFields.filter((f) => f !== "description")]
    .map((name) => `<label>${escapeHtml(name)} <input name="${escapeHtml(name)}"></label><br>`)
    .join("\n");
  return page(
    "Upload a log",
    `<h1>Upload a log</h1>
<form method="post" action="${escapeHtml(path)}" enctype="multipart/form-data">
<input type="file" name="${escapeHtml(fileField)}"><br>
${inputs}
<button type="submit">Upload</button>
</form>`,
  );
}

function logPage(upload: ReceivedUpload): string {
  return page(
    upload.filename,
    `<h1>${escapeHtml(upload.filename)}</h1>\n<p>${upload.size} bytes, received ${new Date(upload.receivedAt).toISOString()}</p>`,
  );
}

const faultBody = z
  .object({
    status: z
      .union([z.literal(429), z.literal(500), z.literal(502), z.literal(503), z.literal(504)])
      .optional(),
    error_text: z.string().min(1).optional(),
    count: z.number().int().positive().optional(),
    reset_after_bytes: z.number().int().nonnegative().optional(),
  })
  .strict();

async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new SimHttpError(413, "Payload Too Large", "control bodies are small");
    chunks.push(chunk);
  }
  let json: unknown;
  try {
    const text = Buffer.concat(chunks).toString("utf8");
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new SimHttpError(400, "Bad Request", "body is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new SimHttpError(400, "Bad Request", z.prettifyError(parsed.error));
  return parsed.data;
}

/** GET received, GET received/<id> (the bytes), POST faults, DELETE faults. */
async function control(req: IncomingMessage, res: ServerResponse, site: FormSite, route: string) {
  const method = req.method ?? "GET";
  if (method === "GET" && route === "received") {
    sendJson(res, 200, site.received());
    return;
  }
  const one = /^received\/([0-9a-f-]+)$/.exec(route);
  if (method === "GET" && one) {
    const found = site.find(one[1] ?? "");
    if (found?.file === undefined)
      throw new SimHttpError(404, "Not Found", "no such upload (or no content kept)");
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": found.size });
    createReadStream(found.file).pipe(res);
    return;
  }
  if (method === "GET" && route === "faults") {
    sendJson(res, 200, site.faults());
    return;
  }
  if (method === "POST" && route === "faults") {
    const body = await readJson(req, faultBody);
    site.injectFault({
      ...(body.status === undefined ? {} : { status: body.status }),
      ...(body.error_text === undefined ? {} : { errorText: body.error_text }),
      ...(body.count === undefined ? {} : { count: body.count }),
      ...(body.reset_after_bytes === undefined ? {} : { resetAfterBytes: body.reset_after_bytes }),
    });
  } else if (method === "DELETE" && route === "faults") {
    site.clearFaults();
  } else {
    throw new SimHttpError(404, "Not Found", `no control route ${method} /_sim/${route}`);
  }
  res.writeHead(204);
  res.end();
}

async function handle(req: IncomingMessage, res: ServerResponse, site: FormSite): Promise<void> {
  const url = new URL(req.url ?? "/", "http://sim");
  try {
    if (url.pathname.startsWith("/_sim/")) {
      await control(req, res, site, url.pathname.slice("/_sim/".length));
    } else if (url.pathname === site.config.path && req.method === "POST") {
      await upload(req, res, site);
    } else if (url.pathname === site.config.path && req.method === "GET") {
      send(res, 200, formPage(site));
    } else if (url.pathname === "/plot_app" && req.method === "GET") {
      const found = site.find(url.searchParams.get("log") ?? "");
      if (!found) throw new SimHttpError(404, "Not Found", "no such log");
      send(res, 200, logPage(found));
    } else {
      throw new SimHttpError(404, "Not Found", `nothing at ${req.method ?? "?"} ${url.pathname}`);
    }
  } catch (error) {
    if (res.headersSent || res.destroyed || req.socket.destroyed) {
      res.destroy();
      return;
    }
    const answer = SimHttpError.of(error);
    // A refused upload is answered at once; the rest of its body is read and dropped, so the client
    // gets the answer rather than a reset (what nginx's lingering close does).
    if (!req.complete) req.resume();
    sendError(res, answer);
  }
}

export interface TlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

export function createUploadFormServer(site: FormSite, tls?: TlsOptions): Server | TlsServer {
  const options = { requestTimeout: 0, keepAliveTimeout: 5000 };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res, site);
  };
  return tls ? createTlsServer({ ...options, ...tls }, listener) : createServer(options, listener);
}
