/**
 * HTTP client for one Moonraker server, the printers' HttpClient (../http.ts) with: the optional
 * X-Api-Key, `{result}` unwrapping, Moonraker's error bodies, the multipart upload with a
 * SHA-256 checksum worked out while the file streams, and ranged downloads.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import type { Secret } from "../../core/secret.ts";
import {
  HttpClient,
  type CallOptions,
  type ErrorContext,
  type HttpResponse,
  type HttpTarget,
} from "../http.ts";
import { parseWire } from "./api-types.ts";
import { NETWORK_TERMS, refusal } from "./errors.ts";

export interface MoonrakerClientOptions extends HttpTarget {
  apiKey?: Secret;
}

export interface UploadTarget {
  /** Folder under the gcodes root ("" for the root itself); Moonraker creates it when missing. */
  dir: string;
  /** The file's name. */
  name: string;
  size: number;
}

/** A form field part of a multipart body. */
function fieldPart(boundary: string, name: string, value: string): string {
  return `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}

export class MoonrakerClient extends HttpClient {
  /** The API key, for the websocket's `server.connection.identify`. */
  readonly apiKey: Secret | undefined;

  constructor(options: MoonrakerClientOptions) {
    const key = options.apiKey;
    super(options, {
      connections: 8,
      terms: NETWORK_TERMS,
      refusal,
      auth: () => (key === undefined ? {} : { "X-Api-Key": key.reveal() }),
      maxJsonBytes: 64 * 1024 * 1024,
    });
    this.apiKey = key;
  }

  /** ws:// (or wss://) URL of Moonraker's JSON-RPC websocket. */
  get websocketUrl(): string {
    return `${this.origin.replace(/^http/, "ws")}${this.base}/websocket`;
  }

  /** The context of messages about `operation` (on `subject`). */
  about(operation: string, subject?: string): ErrorContext {
    return { printer: this.printer, operation, ...(subject === undefined ? {} : { subject }) };
  }

  /** Reads a JSON answer: the `result` of a wrapped one, or the whole (uploads answer unwrapped). */
  async json(res: HttpResponse, context: ErrorContext, signal?: AbortSignal): Promise<unknown> {
    const json = await this.readJson(res, context, signal);
    if (json !== null && typeof json === "object" && "result" in json) return json.result;
    return json;
  }

  /** A request whose answer is JSON, parsed with `schema`. */
  async result<T>(method: string, path: string, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T> {
    const context = this.context(method, path, options);
    const res = await this.call(method, path, [200, 201], options);
    const json = await this.json(res, context, options.signal);
    return parseWire(schema, json, `${context.printer}: ${context.operation}`, options.subject);
  }

  /**
   * Uploads a file to the gcodes root as Moonraker's upload form: `root`, `path` and the file, then
   * the SHA-256 of the bytes that went out as `checksum` (Moonraker checks it once the body is in,
   * so it may come last: the file is read once). A source that gives more or fewer than `size`
   * bytes fails before the closing boundary, so Moonraker stores nothing.
   */
  async upload(
    target: UploadTarget,
    source: Readable | AsyncIterable<Uint8Array>,
    options: CallOptions = {},
  ): Promise<HttpResponse> {
    const context = this.context("POST", "/server/files/upload", options);
    const boundary = `----FerryMoonraker${randomBytes(12).toString("hex")}`;
    const head =
      fieldPart(boundary, "root", "gcodes") +
      (target.dir === "" ? "" : fieldPart(boundary, "path", target.dir)) +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${target.name}"\r\n` +
      "Content-Type: application/octet-stream\r\n\r\n";
    const checksumPart = (digest: string) =>
      `\r\n${fieldPart(boundary, "checksum", digest)}--${boundary}--\r\n`;
    const headBytes = Buffer.from(head, "utf8");
    const tailLength = Buffer.byteLength(checksumPart("0".repeat(64)));
    const state: { failure: unknown } = { failure: undefined };
    async function* body(): AsyncGenerator<Uint8Array> {
      yield headBytes;
      const hash = createHash("sha256");
      let sent = 0;
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        sent += chunk.length;
        if (sent > target.size) break;
        hash.update(chunk);
        yield chunk;
      }
      if (sent !== target.size) {
        const got = sent > target.size ? "more than" : `${sent} bytes instead of`;
        state.failure = new FerryError(
          "PROTOCOL",
          `${context.printer}: ${context.operation}: the source gave ${got} the ${target.size} bytes announced`,
          { ...(context.subject === undefined ? {} : { subject: context.subject }), retryable: true },
        );
        throw state.failure;
      }
      yield Buffer.from(checksumPart(hash.digest("hex")), "utf8");
    }
    const headers = {
      ...options.headers,
      "Content-Type": `multipart/form-data; boundary=${boundary}`,
      "Content-Length": String(headBytes.length + target.size + tailLength),
    };
    let res: HttpResponse;
    try {
      res = await this.send("POST", "/server/files/upload", { ...options, headers }, Readable.from(body()));
    } catch (error) {
      throw state.failure ?? (source instanceof Readable && source.errored ? source.errored : error);
    }
    await this.check(res, [201], context);
    return res;
  }

  /** The bytes of a file of `root` from `offset` (Moonraker serves ranges). */
  async download(root: string, path: string, offset: number, options: CallOptions = {}): Promise<Readable> {
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    const headers = offset > 0 ? { Range: `bytes=${offset}-` } : undefined;
    const res = await this.call("GET", `/server/files/${root}/${encoded}`, offset > 0 ? [206, 416] : [200], {
      ...options,
      ...(headers === undefined ? {} : { headers }),
    });
    // 416: the offset is the file's end (Moonraker refuses an empty range); nothing is left to read.
    if (res.status === 416) {
      await res.body.dump();
      return Readable.from([]);
    }
    return res.body;
  }
}
