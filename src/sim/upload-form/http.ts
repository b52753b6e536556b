/** HTTP answers of the upload-form simulator: error pages, HTML and JSON bodies. */
import type { ServerResponse } from "node:http";
import { SimHttpError } from "../http-error.ts";

export { SimHttpError };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A small HTML page, as a web form's server renders one. */
export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
${body}
</body>
</html>
`;
}

export function send(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
  type = "text/html; charset=utf-8",
): void {
  res.writeHead(status, { ...headers, "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), {}, "application/json");
}

/** The error page: status line as the heading, the reason below it. */
export function sendError(res: ServerResponse, error: SimHttpError): void {
  const heading = `${error.status} ${error.title}`;
  send(
    res,
    error.status,
    page(heading, `<h1>${escapeHtml(heading)}</h1>\n<p>${escapeHtml(error.message)}</p>`),
    error.headers,
  );
}
