/** Raw HTTP helpers for the simulator's tests (node:http, so every header and byte is under control). */
import { createHash } from "node:crypto";
import { request, type IncomingHttpHeaders } from "node:http";
import { PrusaLinkSim, startPrusaLinkSims, type PrusaLinkSimOptions } from "./index.ts";

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RawOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send these bytes, then drop the connection. */
  cutAfter?: Buffer;
  /** Send the body in chunked encoding (no Content-Length). */
  chunked?: boolean;
}

export function raw(
  sim: PrusaLinkSim,
  method: string,
  path: string,
  options: RawOptions = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    if (body && !options.chunked) headers["Content-Length"] = String(body.length);
    const req = request(`${sim.url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    if (options.cutAfter) {
      req.write(options.cutAfter, () => {
        setTimeout(() => {
          req.destroy();
          resolve({ status: 0, headers: {}, body: "" });
        }, 50);
      });
      return;
    }
    if (options.chunked && body) req.write(body);
    req.end(options.chunked ? undefined : body);
  });
}

export const md5 = (s: string) => createHash("md5").update(s).digest("hex");

export function challengeOf(res: RawResponse): Record<string, string> {
  const header = res.headers["www-authenticate"] ?? "";
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g)) out[m[1] ?? ""] = m[2] ?? m[3] ?? "";
  return out;
}

export function digest(method: string, uri: string, nonce: string, password: string, user = "maker"): string {
  const ha1 = md5(`${user}:Printer API:${password}`);
  const response = md5(`${ha1}:${nonce}:${md5(`${method}:${uri}`)}`);
  return `Digest username="${user}", realm="Printer API", nonce="${nonce}", uri="${uri}", response="${response}"`;
}

export const KEY = { "X-Api-Key": "key" };
export const upload = (
  sim: PrusaLinkSim,
  path: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
) => raw(sim, "PUT", `/api/v1/files/usb/${path}`, { headers: { ...KEY, ...headers }, body });

export async function withSim(
  options: PrusaLinkSimOptions,
  fn: (sim: PrusaLinkSim) => Promise<void>,
): Promise<void> {
  const sim = await PrusaLinkSim.start({ apiKey: "key", password: "pw", ...options });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

/**
 * `count` simulators on consecutive free ports, as `ferry sim prusalink --port P --count N` starts
 * them: the base is a port the system just gave out, and when another process takes one of the
 * range meanwhile, a new base is tried.
 */
export async function startOnFreeConsecutivePorts(
  options: PrusaLinkSimOptions & { count: number },
  attempts = 20,
): Promise<PrusaLinkSim[]> {
  for (let attempt = 1; ; attempt++) {
    const probe = await PrusaLinkSim.start({});
    const base = probe.port;
    await probe.close();
    if (base + options.count - 1 > 65_535) continue;
    try {
      return await startPrusaLinkSims({ ...options, port: base });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= attempts) throw error;
    }
  }
}
