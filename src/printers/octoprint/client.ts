/**
 * HTTP client for one OctoPrint server, the printers' HttpClient (../http.ts) with: room for several
 * uploads at once, the API key in `X-Api-Key` on every request, OctoPrint's error words, parsed
 * answers and multipart uploads. The base URL may carry a path (behind a reverse proxy at /octoprint/).
 */
import { Readable } from "node:stream";
import type { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import { silentLogger, type Logger } from "../../core/logger.ts";
import type { MultipartBody } from "../../core/multipart.ts";
import type { Secret } from "../../core/secret.ts";
import {
  HttpClient,
  subjectOf,
  type CallOptions,
  type ErrorContext,
  type HttpResponse,
  type HttpTarget,
} from "../http.ts";
import { parseWire } from "./api-types.ts";
import { NETWORK_TERMS, refusal } from "./errors.ts";

export interface OctoPrintClientOptions extends HttpTarget {
  apiKey: Secret;
  logger?: Logger;
  /** Connections kept to the server (default 6: uploads at once plus status polls). */
  connections?: number;
}

export class OctoPrintClient extends HttpClient {
  constructor(options: OctoPrintClientOptions) {
    super(options, {
      connections: options.connections ?? 6,
      terms: NETWORK_TERMS,
      refusal,
      auth: () => ({ "X-Api-Key": options.apiKey.reveal() }),
      maxJsonBytes: 64 * 1024 * 1024,
      resend: { vendor: "OctoPrint", logger: options.logger ?? silentLogger },
    });
  }

  /** Reads a JSON answer and parses it with `schema`. */
  async json<T>(res: HttpResponse, schema: z.ZodType<T>, context: ErrorContext): Promise<T> {
    const value = await this.readJson(res, context);
    return parseWire(schema, value, `${context.printer}: ${context.operation}`, context.subject);
  }

  /** GET of a JSON resource, parsed with `schema`. */
  async getJson<T>(path: string, schema: z.ZodType<T>, options: CallOptions = {}): Promise<T> {
    const res = await this.call("GET", path, [200], options);
    return this.json(res, schema, this.context("GET", path, options));
  }

  /**
   * POST of a multipart body around `source` with its exact Content-Length. The source must give
   * exactly the file's size; otherwise the request fails before the closing boundary goes out, so
   * the server never takes the file.
   */
  async upload(
    path: string,
    form: MultipartBody,
    source: Readable | AsyncIterable<Uint8Array>,
    options: CallOptions = {},
  ): Promise<HttpResponse> {
    const context = this.context("POST", path, options);
    const state: { mismatch: FerryError | undefined } = { mismatch: undefined };
    const chunks = form.chunks(source, (sent) => {
      const got = sent > form.size ? "more than" : `${sent} bytes instead of`;
      state.mismatch = new FerryError(
        "PROTOCOL",
        `${context.printer}: ${context.operation}: the source gave ${got} the ${form.size} bytes announced`,
        subjectOf(context),
      );
      return state.mismatch;
    });
    const headers = {
      ...options.headers,
      "Content-Type": form.contentType,
      "Content-Length": String(form.length),
    };
    let res: HttpResponse;
    try {
      res = await this.request(
        "POST",
        path,
        { ...options, headers },
        Readable.from(chunks, { objectMode: false }),
      );
    } catch (error) {
      throw state.mismatch ?? error;
    }
    if (state.mismatch) {
      await res.body.dump();
      throw state.mismatch;
    }
    return res;
  }
}
