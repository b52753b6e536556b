/** Tools of the S3 quirk tests: a proxy that counts the parts sent through it, and a source that waits. */
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";

export interface PartCounter {
  /** http://127.0.0.1:<port> of the proxy: point the adapter here. */
  endpoint: string;
  /** Part numbers of every UploadPart that went through, in arrival order. */
  parts: number[];
  /** Body bytes of those parts. */
  bytes(): number;
  /** Most UploadParts in flight at once. */
  peak(): number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the gateway on `port`. The SDK signs the Host header, which the proxy
 * passes on unchanged, so signatures still hold.
 */
export async function partCounter(port: number): Promise<PartCounter> {
  const parts: number[] = [];
  let bytes = 0;
  let inFlight = 0;
  let peak = 0;
  const proxy = createServer((req, res) => {
    const part = new URL(req.url ?? "/", "http://proxy").searchParams.get("partNumber");
    const counted = req.method === "PUT" && part !== null;
    if (counted) {
      parts.push(Number(part));
      peak = Math.max(peak, ++inFlight);
      req.on("data", (chunk: Buffer) => (bytes += chunk.length));
      res.once("close", () => inFlight--);
    }
    const upstream = request(
      { host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const address = proxy.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    parts,
    bytes: () => bytes,
    peak: () => peak,
    close: () => new Promise((resolve) => proxy.close(() => resolve())),
  };
}

/** `data` in 64 KiB chunks, pausing after `first` bytes until `gate` resolves. */
export function gatedSource(data: Buffer, first: number, gate: Promise<unknown>): Readable {
  async function* chunks() {
    for (let at = 0; at < data.length; at += 64 * 1024) {
      if (at >= first) await gate;
      yield data.subarray(at, Math.min(at + 64 * 1024, data.length));
    }
  }
  return Readable.from(chunks());
}
