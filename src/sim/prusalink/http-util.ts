/** Small HTTP helpers shared by the simulator's routes. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { SimHttpError } from "../http-error.ts";

export { SimHttpError };

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, "Content-Length": 0 });
  res.end();
}

/**
 * Writes an error the way PrusaLink does: the spec's Error object when the client accepts JSON,
 * otherwise plain text. `close` ends the connection afterwards (used when a request body is left
 * unread, as the printer does when it refuses an upload).
 */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  error: SimHttpError,
  close = false,
): void {
  const json = (req.headers.accept ?? "").includes("application/json");
  const body = json
    ? JSON.stringify({ title: error.title, text: error.message })
    : `${error.title}: ${error.message}`;
  res.writeHead(error.status, {
    ...error.headers,
    "Content-Type": json ? "application/json" : "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    ...(close ? { Connection: "close" } : {}),
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** Reads a small request body (control API JSON). */
export async function readSmallBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new SimHttpError(413, "Payload Too Large", `body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * A flag header as the Buddy firmware's request parser reads it (utils/gen-automata/http.py): set
 * only by exactly `?1`; any other value (`true`, `1`, `?0`) is as if the header were absent.
 */
export function flagHeader(req: IncomingMessage, name: string): boolean {
  const value = req.headers[name.toLowerCase()];
  return typeof value === "string" && value.trim() === "?1";
}

/** `Print-After-Upload`, which the firmware also takes as `1` or `true`. */
export function printAfterUpload(req: IncomingMessage): boolean {
  const value = req.headers["print-after-upload"];
  return typeof value === "string" && ["?1", "1", "true"].includes(value.trim().toLowerCase());
}
