/**
 * HTTP answers as OctoPrint gives them: API errors as `{"error": "..."}` (its Flask error handler
 * for everything under /api), werkzeug's default descriptions where OctoPrint gives none, JSON
 * request bodies read as Flask reads them, and Python's URL quoting for the `refs` it builds.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { SimHttpError } from "../http-error.ts";

export { SimHttpError };

/** werkzeug's descriptions of a bare `abort(status)`. */
const DEFAULT_TEXT: Readonly<Record<number, [string, string]>> = {
  400: ["Bad Request", "The browser (or proxy) sent a request that this server could not understand."],
  403: [
    "Forbidden",
    "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.",
  ],
  404: [
    "Not Found",
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
  ],
  405: ["Method Not Allowed", "The method is not allowed for the requested URL."],
  409: [
    "Conflict",
    "A conflict happened while processing the request. The resource might have been modified while the request was being processed.",
  ],
  411: ["Length Required", "A request with this method requires a valid <code>Content-Length</code> header."],
  413: ["Request Entity Too Large", "The data value transmitted exceeds the capacity limit."],
  415: ["Unsupported Media Type", "The server does not support the media type transmitted in the request."],
  500: [
    "Internal Server Error",
    "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.",
  ],
  503: [
    "Service Unavailable",
    "The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.",
  ],
};

/** `abort(status, description)`: the description, or werkzeug's default for the status. */
export function abort(
  status: number,
  description?: string,
  headers: Record<string, string> = {},
): SimHttpError {
  const [title, text] = DEFAULT_TEXT[status] ?? ["Error", "Error"];
  return new SimHttpError(status, title, description ?? text, headers);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** OctoPrint's NO_CONTENT. */
export function sendNoContent(res: ServerResponse): void {
  res.writeHead(204, { "Content-Length": 0 });
  res.end();
}

/** An error under /api: OctoPrint's `make_api_error` JSON. */
export function sendApiError(res: ServerResponse, error: SimHttpError, close = false): void {
  sendJson(
    res,
    error.status,
    { error: error.message },
    { ...error.headers, ...(close ? { Connection: "close" } : {}) },
  );
}

/** An error outside /api (downloads): Tornado's plain error page. */
export function sendTornadoError(req: IncomingMessage, res: ServerResponse, error: SimHttpError): void {
  const body = `<html><title>${error.status}: ${error.title}</title><body>${error.status}: ${error.title}</body></html>`;
  res.writeHead(error.status, {
    ...error.headers,
    "Content-Type": "text/html; charset=UTF-8",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw abort(413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A JSON object body, read as Flask's `request.get_json()` does (415 unless the type is JSON). */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const body = await readBody(req);
  if (type !== "application/json" && !type.endsWith("+json")) {
    throw abort(
      415,
      "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw abort(
      400,
      `Failed to decode JSON object: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw abort(400, "command is invalid");
  return json as Record<string, unknown>;
}

/**
 * `get_json_command_from_request`: the command and its data; 400 "command is invalid" for an
 * unknown one, "Mandatory parameters missing" when one of its parameters is absent.
 */
export async function readCommand(
  req: IncomingMessage,
  commands: Readonly<Record<string, readonly string[]>>,
): Promise<{ command: string; data: Record<string, unknown> }> {
  const data = await readJson(req);
  const command = data.command;
  if (typeof command !== "string" || !Object.hasOwn(commands, command))
    throw abort(400, "command is invalid");
  if ((commands[command] ?? []).some((key) => !(key in data)))
    throw abort(400, "Mandatory parameters missing");
  return { command, data };
}

/** Python's `urllib.parse.quote(text)` (safe "/"): what OctoPrint puts in its `download` refs. */
export function pyQuote(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll("%2F", "/");
}

/** OctoPrint's `valid_boolean_trues`, compared case-insensitively. */
export function isTrue(value: unknown): boolean {
  if (value === true || value === 1) return true;
  return typeof value === "string" && ["true", "yes", "y", "1"].includes(value.toLowerCase());
}
