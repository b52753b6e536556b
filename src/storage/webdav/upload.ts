/**
 * Resumable uploads over WebDAV. Where the server keeps ranged PUTs (`Content-Range: bytes X-Y/*`
 * writes in place: Apache mod_dav; detected per adapter instance), a file larger than one chunk goes
 * to `.ferry-<16 hex>.part` beside the target, a chunk per PUT, the stored size checked after each
 * (PROPFIND), and is moved over the target at the end; a later attempt resumes from the size the
 * server holds. Elsewhere (nginx answers 501) and for files of one chunk, the upload is one PUT to
 * the final name, which Apache and nginx store atomically: it starts over at 0 every time, and the
 * token simply never fits.
 */
import { Readable } from "node:stream";
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import { basename, dirname, joinPath } from "../../core/paths.ts";
import type { Entry, FinishOptions, OpOptions, Upload, UploadOptions, UploadToken } from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import { ByteReader } from "./bytes.ts";
import { checkAborted } from "./errors.ts";
import { TEMP_NAME, tempName } from "../temp-names.ts";

export { TEMP_NAME };

/** A new temp file's path in `folder`. */
export function tempPathIn(folder: string): string {
  return joinPath(folder, tempName());
}

/** What the adapter lends an upload. */
export interface UploadHost {
  readonly name: string;
  readonly chunkBytes: number;
  ensureFolder(dir: string, signal: AbortSignal | undefined): Promise<void>;
  /** Whether this server keeps ranged PUTs (probed once, in `folder`). */
  rangedPut(folder: string, signal: AbortSignal | undefined): Promise<boolean>;
  /** PUT of `length` bytes from `reader` to `path`, at `start` (a ranged PUT) when given. */
  put(
    path: string,
    reader: ByteReader,
    length: number,
    at: { start?: number; last: boolean },
    signal: AbortSignal | undefined,
  ): Promise<void>;
  /** Bytes of the file at `path`, undefined when there is none. */
  fileSize(path: string, signal: AbortSignal | undefined): Promise<number | undefined>;
  moveFile(from: string, to: string, signal: AbortSignal | undefined): Promise<void>;
  /** Removes a file; nothing when it is absent. */
  deleteFile(path: string, signal?: AbortSignal): Promise<void>;
}

const tokenSchema = z.object({
  v: z.literal(1),
  path: z.string(),
  size: z.number(),
  modTime: z.number().nullable(),
  /** The partial file (chunked uploads), or null (one PUT, nothing to resume). */
  temp: z.string().nullable(),
});
type Token = z.output<typeof tokenSchema>;

/** The rest of the file from byte `start`, failing when it is not `size - start` bytes. */
function readerFor(
  host: UploadHost,
  path: string,
  size: number,
  rest: Readable | AsyncIterable<Uint8Array>,
  start: number,
): ByteReader {
  return new ByteReader(rest, start, (got) => sizeMismatch(host.name, path, size, got));
}

class DirectUpload implements Upload {
  readonly offset = 0;
  readonly token: UploadToken;
  readonly #host: UploadHost;
  readonly #target: string;
  readonly #size: number;

  constructor(host: UploadHost, target: string, size: number, token: Token) {
    this.#host = host;
    this.#target = target;
    this.#size = size;
    this.token = token;
  }

  async finish(rest: Readable | AsyncIterable<Uint8Array>, options: FinishOptions = {}): Promise<Entry> {
    const { signal } = options;
    try {
      checkAborted(signal, { device: this.#host.name, operation: "upload", path: this.#target });
      const reader = readerFor(this.#host, this.#target, this.#size, rest, 0);
      await this.#host.put(this.#target, reader, this.#size, { last: true }, signal);
    } catch (error) {
      if (rest instanceof Readable) rest.destroy();
      throw error;
    }
    options.onStored?.({ bytes: this.#size, token: this.token });
    return { path: this.#target, type: "file", size: this.#size };
  }

  abort(): Promise<void> {
    // One PUT stores all or nothing: there is nothing to throw away.
    return Promise.resolve();
  }
}

class ChunkedUpload implements Upload {
  readonly offset: number;
  readonly token: UploadToken;
  readonly #host: UploadHost;
  readonly #target: string;
  readonly #temp: string;
  readonly #size: number;

  constructor(host: UploadHost, target: string, token: Token & { temp: string }, offset: number) {
    this.#host = host;
    this.#target = target;
    this.#temp = token.temp;
    this.#size = token.size;
    this.offset = offset;
    this.token = token;
  }

  async finish(rest: Readable | AsyncIterable<Uint8Array>, options: FinishOptions = {}): Promise<Entry> {
    const { signal, onStored } = options;
    const host = this.#host;
    try {
      checkAborted(signal, { device: host.name, operation: "upload", path: this.#target });
      const reader = readerFor(host, this.#target, this.#size, rest, this.offset);
      let at = this.offset;
      if (at === this.#size) await reader.end();
      while (at < this.#size) {
        const length = Math.min(host.chunkBytes, this.#size - at);
        const last = at + length === this.#size;
        await host.put(this.#temp, reader, length, at === 0 ? { last } : { start: at, last }, signal);
        // Never trust a ranged PUT blindly: some servers accept one and store something else.
        const held = await host.fileSize(this.#temp, signal);
        if (held !== at + length) {
          // Whatever the server made of it, it is not the file: never resume from it.
          await host.deleteFile(this.#temp, signal).catch(() => undefined);
          throw new FerryError(
            "PROTOCOL",
            `${host.name}: upload ${this.#target}: the server holds ${held ?? "no"} bytes of the partial file after a chunk that ends at ${at + length}`,
            { subject: this.#target, retryable: true },
          );
        }
        at += length;
        onStored?.({ bytes: at, token: this.token });
      }
      await host.moveFile(this.#temp, this.#target, signal);
    } catch (error) {
      if (rest instanceof Readable) rest.destroy();
      throw error;
    }
    return { path: this.#target, type: "file", size: this.#size };
  }

  async abort(options: OpOptions = {}): Promise<void> {
    await this.#host.deleteFile(this.#temp, options.signal);
  }
}

function parseToken(token: UploadToken | undefined): Token | undefined {
  const parsed = token === undefined ? undefined : tokenSchema.safeParse(token);
  return parsed?.success === true ? parsed.data : undefined;
}

/** Opens an upload to `target` (checked and located by the adapter). */
export async function openResumableUpload(
  host: UploadHost,
  target: string,
  options: UploadOptions,
): Promise<Upload> {
  const { size, signal } = options;
  const folder = dirname(target);
  const wanted = { v: 1 as const, path: target, size, modTime: options.modTime ?? null };
  const old = parseToken(options.resume);
  // Only a temp file of ours beside the target may be touched: a token is data, not a command.
  const oldTemp =
    old?.temp !== null &&
    old?.temp !== undefined &&
    dirname(old.temp) === folder &&
    TEMP_NAME.test(basename(old.temp))
      ? old.temp
      : undefined;
  const fits =
    old !== undefined && old.path === target && old.size === size && old.modTime === wanted.modTime;
  await host.ensureFolder(folder, signal);
  const chunked = size > host.chunkBytes && (await host.rangedPut(folder, signal));
  if (oldTemp !== undefined && chunked && fits) {
    const held = await host.fileSize(oldTemp, signal);
    if (held !== undefined && held <= size)
      return new ChunkedUpload(host, target, { ...wanted, temp: oldTemp }, held);
  }
  // A stale partial (another version of the file, or gone): throw it away and start over.
  if (oldTemp !== undefined) await host.deleteFile(oldTemp, signal);
  if (!chunked) return new DirectUpload(host, target, size, { ...wanted, temp: null });
  return new ChunkedUpload(host, target, { ...wanted, temp: tempPathIn(folder) }, 0);
}
