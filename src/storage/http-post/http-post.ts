/**
 * A web upload form (PX4 Flight Review's /upload and the like) as a write-only StorageAdapter: each
 * write is one multipart/form-data POST of the file and the configured text fields, streamed with
 * an exact Content-Length. The site answers with a redirect to the uploaded file's page (or a 2xx
 * page); it cannot be listed, read or asked what it holds, so the engine keeps a delivery index
 * for it (`list: "none"`).
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import { basename, normalizePath } from "../../core/paths.ts";
import type { Secret } from "../../core/secret.ts";
import {
  defineStorageAdapter,
  type AdapterContext,
  type Entry,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type WriteOptions,
} from "../adapter.ts";
import { firstLine, networkError, statusError, type ErrorContext } from "./errors.ts";
import { MultipartBody } from "../../core/multipart.ts";
import { controlCharIn, fillPlaceholders, httpPostKind, type HttpPostOptions } from "./options.ts";
import { Watchdog } from "./watchdog.ts";

export { httpPostOptionsSchema, fillPlaceholders, type HttpPostOptions } from "./options.ts";

/** Enough of a reply to find the success text or the error message; the rest is dropped. */
const MAX_REPLY_BYTES = 256 * 1024;

export class HttpPostStorage implements StorageAdapter {
  readonly kind = httpPostKind.kind;
  readonly name: string;
  readonly capabilities = httpPostKind.capabilities;
  readonly #options: HttpPostOptions;
  readonly #context: AdapterContext;
  readonly #url: URL;
  readonly #timeoutMs: number;
  readonly #successPattern: RegExp | undefined;
  #agent: Promise<Agent> | undefined;
  #closed = false;

  constructor(options: HttpPostOptions, context: AdapterContext) {
    this.name = context.name;
    this.#options = options;
    this.#context = context;
    this.#url = new URL(options.url);
    this.#timeoutMs = options.timeout * 1000;
    this.#successPattern =
      options.success_pattern === undefined ? undefined : new RegExp(options.success_pattern);
  }

  /** One keep-alive pool per device; the CA file is read on first use. */
  #dispatcher(): Promise<Agent> {
    this.#agent ??= (async () => {
      const caFile = this.#options.ca_file;
      let ca: Buffer | undefined;
      if (caFile !== undefined) {
        const file = resolve(this.#context.baseDir, caFile);
        ca = await readFile(file).catch((error: unknown) => {
          this.#agent = undefined;
          throw new FerryError("PERMISSION", `${this.name}: cannot read ca_file ${file}`, {
            cause: error,
            retryable: false,
            subject: caFile,
          });
        });
      }
      return new Agent({
        connections: this.capabilities.maxConcurrency,
        keepAliveTimeout: 4000,
        connect: { timeout: Math.min(this.#timeoutMs, 15_000), ...(ca ? { ca } : {}) },
        // The watchdog times the request (see watchdog.ts).
        headersTimeout: 0,
        bodyTimeout: this.#timeoutMs,
      });
    })();
    return this.#agent;
  }

  /** Rejects with ABORTED when the signal fired, else UNSUPPORTED (not retryable). */
  #refuse(
    what: string,
    path: string,
    signal: AbortSignal | undefined,
    hint = "Ferry keeps its own record of what it delivered",
  ): Promise<never> {
    return Promise.resolve().then(() => {
      throwIfAborted(signal);
      throw new FerryError("UNSUPPORTED", `${this.name}: a web upload form cannot ${what}; ${hint}`, {
        subject: path,
        retryable: false,
      });
    });
  }

  list(dir: string, options?: ListOptions): AsyncIterable<Entry> {
    return {
      [Symbol.asyncIterator]: () => ({ next: () => this.#refuse("list its files", dir, options?.signal) }),
    };
  }

  /** The root is there (a write needs no folder); what is under it no form can say. */
  stat(path: string, options?: OpOptions): Promise<Entry> {
    return Promise.resolve().then(() =>
      normalizePath(path) === "" && options?.signal?.aborted !== true
        ? { path: "", type: "dir" as const }
        : this.#refuse("tell what it holds", path, options?.signal),
    );
  }

  read(path: string, options?: ReadOptions): Promise<Readable> {
    return this.#refuse("give files back", path, options?.signal);
  }

  /** Files sent to a form stay there: removing one is refused, so the delivery record is kept too. */
  remove(path: string, options?: OpOptions): Promise<void> {
    return this.#refuse(
      "delete what it received",
      path,
      options?.signal,
      "sync to it with mode copy or move, not mirror",
    );
  }

  /** A form has no folders: there is nothing to create, and writes into any folder work. */
  mkdir(path: string, options?: OpOptions): Promise<void> {
    return Promise.resolve().then(() => {
      normalizePath(path);
      throwIfAborted(options?.signal);
    });
  }

  #checkName(path: string): void {
    if (path === "")
      throw new FerryError("NAME_INVALID", `${this.name}: a file needs a name`, { subject: path });
    const char = controlCharIn(path);
    if (char !== undefined) {
      throw new FerryError(
        "NAME_INVALID",
        `${this.name}: "${basename(path)}" contains the control character ${JSON.stringify(char)}, which a form upload cannot carry`,
        { subject: path },
      );
    }
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    throwIfAborted(options.signal);
    const at = normalizePath(path).normalize("NFC");
    this.#checkName(at);
    if (this.#closed) throw new FerryError("UNAVAILABLE", `${this.name}: adapter closed`, { subject: at });
    const fields = Object.entries(this.#options.fields).map(
      ([name, value]) => [name, fillPlaceholders(value, at)] as const,
    );
    const body = new MultipartBody(fields, {
      field: this.#options.file_field,
      filename: basename(at),
      size: options.size,
    });
    const context: ErrorContext = { device: this.name, subject: at };
    const agent = await this.#dispatcher();
    // No second try here: undici drops idle connections 2 s before the site's Keep-Alive timeout,
    // and a post that failed is the task runner's to retry.
    const outcome = await this.#post(agent, body, source, context, options.signal);
    if (!outcome.ok) {
      // What is left of the source is of no use now; a stalled one would otherwise hang on.
      if (isReadable(source)) source.destroy();
      throw outcome.error;
    }
    this.#context.logger.debug({ device: this.name, path: at, location: outcome.location }, "uploaded");
    return { path: at, type: "file", size: options.size };
  }

  async #post(
    agent: Dispatcher,
    body: MultipartBody,
    source: Readable | AsyncIterable<Uint8Array>,
    context: ErrorContext,
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; location: string | undefined } | { ok: false; error: FerryError }> {
    const watchdog = new Watchdog(this.#timeoutMs);
    const signals = signal
      ? AbortSignal.any([signal, watchdog.controller.signal])
      : watchdog.controller.signal;
    const state: { failure: FerryError | undefined } = { failure: undefined };
    const mismatch = (sent: number) => {
      const got = sent > body.size ? "more than" : `${sent} bytes instead of`;
      state.failure = new FerryError(
        "PROTOCOL",
        `${context.device}: upload of ${context.subject}: the source gave ${got} the ${body.size} bytes announced`,
        { subject: context.subject, retryable: true },
      );
      return state.failure;
    };
    const chunks = body.chunks(source, mismatch);
    async function* paced(): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunks) {
        watchdog.poke();
        yield chunk;
      }
      watchdog.poke(); // the whole body went: from now on the site has `timeout` to answer
    }
    const failed = (error: unknown) => {
      const translated =
        state.failure ??
        (watchdog.fired && !signal?.aborted
          ? new FerryError(
              "TRANSIENT",
              `${context.device}: upload of ${context.subject}: no answer for ${this.#timeoutMs / 1000} s`,
              {
                cause: error,
                subject: context.subject,
              },
            )
          : networkError(error, context, signal));
      return { ok: false as const, error: translated };
    };
    const bodyStream = Readable.from(paced(), { objectMode: false });
    // Its failures reach us through the request; once the site has answered, nobody else listens.
    bodyStream.on("error", () => undefined);
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await agent.request({
          origin: this.#url.origin,
          path: `${this.#url.pathname}${this.#url.search}`,
          method: "POST",
          headers: {
            "content-type": body.contentType,
            "content-length": String(body.length),
            accept: "text/html,application/json;q=0.9,*/*;q=0.8",
            "user-agent": "Ferry",
            ...this.#authorization(),
          },
          body: bodyStream,
          signal: signals,
        });
      } catch (error) {
        return failed(error);
      }
      watchdog.poke();
      let text: string;
      try {
        text = await readSome(res.body, MAX_REPLY_BYTES);
      } catch (error) {
        return failed(error);
      }
      const type = header(res.headers["content-type"]);
      const status = res.statusCode;
      if ([301, 302, 303, 307, 308].includes(status))
        return { ok: true, location: header(res.headers.location) };
      if (status >= 200 && status < 300) {
        if (this.#successPattern && !this.#successPattern.test(text)) {
          const said = firstLine(text, type);
          const error = new FerryError(
            "PROTOCOL",
            `${context.device}: upload of ${context.subject}: the site answered ${status} without the success text (${this.#options.success_pattern ?? ""})${said === "" ? "" : `: ${said}`}`,
            { subject: context.subject, retryable: false },
          );
          return { ok: false, error };
        }
        return { ok: true, location: header(res.headers.location) };
      }
      const error =
        status >= 300 && status < 400
          ? new FerryError(
              "PROTOCOL",
              `${context.device}: upload of ${context.subject}: unexpected HTTP ${status}`,
              {
                subject: context.subject,
                retryable: false,
              },
            )
          : statusError(status, context, firstLine(text, type));
      return { ok: false, error };
    } finally {
      watchdog.stop();
      // The site may answer before it took the whole body: stop reading the source then (not
      // awaited: a source that stalls would keep the answer waiting).
      void chunks.return(undefined).catch(() => undefined);
    }
  }

  #authorization(): Record<string, string> {
    const { username, password } = this.#options;
    if (username === undefined || password === undefined) return {};
    return { authorization: `Basic ${basic(username, password)}` };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const agent = await this.#agent?.catch(() => undefined);
    await agent?.close();
  }
}

function basic(username: string, password: Secret): string {
  return Buffer.from(`${username}:${password.reveal()}`, "utf8").toString("base64");
}

function isReadable(source: unknown): source is Readable {
  return typeof (source as Partial<Readable>).destroy === "function";
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Up to `limit` bytes of a reply as text; the rest is read and dropped (keeps the connection). */
async function readSome(stream: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString("utf8");
}

export const httpPostAdapter = defineStorageAdapter<HttpPostOptions>({
  ...httpPostKind,
  create: (options, context) => new HttpPostStorage(options, context),
});
