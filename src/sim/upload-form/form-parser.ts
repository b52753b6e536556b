/**
 * Parses one multipart/form-data request with busboy, streaming the file part to a temp file (a log
 * can be tens of MiB; nothing is held in memory). Text fields are collected; file parts under other
 * names are read and dropped. Resolves once the last byte of the file is on disk; rejects (and
 * removes the temp file) when the body is malformed or the client goes away before the end.
 */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { Transform, Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import busboy from "busboy";
import { SimHttpError } from "./http.ts";

export interface ParsedFile {
  field: string;
  /** As the parser decoded it: `filename*` (RFC 5987) when present, else `filename` (UTF-8). */
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  /** Where the bytes are; undefined when content is not kept. */
  tempPath: string | undefined;
}

export interface ParsedForm {
  fields: Record<string, string>;
  /** The first file part under the configured field; undefined when there was none. */
  file: ParsedFile | undefined;
  /** Body bytes read (the whole request body). */
  bodyBytes: number;
}

export interface ParseOptions {
  fileField: string;
  /** Folder for the temp file. */
  dir: string;
  storeContent: boolean;
  /** Body bytes over which the request is refused with 413 (undefined: no limit). */
  maxSize: number | undefined;
  /** Called with the body bytes read so far, before they go to the parser (fault injection). */
  onBytes?: (total: number) => void;
}

/** Counts body bytes, refusing a body that grows past `maxSize` (a chunked one has no length). */
function counter(options: ParseOptions, total: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total.bytes += chunk.length;
      options.onBytes?.(total.bytes);
      if (options.maxSize !== undefined && total.bytes > options.maxSize) {
        done(
          new SimHttpError(
            413,
            "Payload Too Large",
            `the upload is over this site's limit of ${options.maxSize} bytes`,
          ),
        );
        return;
      }
      done(null, chunk);
    },
  });
}

function fileSink(path: string | undefined): Writable {
  if (path !== undefined) return createWriteStream(path, { flags: "wx" });
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}

export async function parseForm(req: IncomingMessage, options: ParseOptions): Promise<ParsedForm> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      // Browsers and Ferry send file names as raw UTF-8; busboy's default would read them as Latin-1.
      defParamCharset: "utf8",
      limits: { fieldSize: 1024 * 1024, fields: 200, files: 20, parts: 250 },
    });
  } catch (error) {
    throw new SimHttpError(400, "Bad Request", `not a multipart/form-data request: ${String(error)}`);
  }
  const fields: Record<string, string> = {};
  let file: ParsedFile | undefined;
  const writes: Promise<void>[] = [];
  const total = { bytes: 0 };

  parser.on("field", (name, value) => {
    fields[name] = value;
  });
  parser.on("file", (name, stream: Readable, info) => {
    if (name !== options.fileField || file !== undefined) {
      stream.resume();
      return;
    }
    const hash = createHash("sha256");
    const found: ParsedFile = {
      field: name,
      filename: info.filename ?? "",
      contentType: info.mimeType,
      size: 0,
      sha256: "",
      tempPath: options.storeContent ? join(options.dir, `${randomUUID()}.part`) : undefined,
    };
    file = found;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        found.size += chunk.length;
        done(null, chunk);
      },
    });
    writes.push(
      pipeline(stream, tap, fileSink(found.tempPath)).then(() => {
        found.sha256 = hash.digest("hex");
      }),
    );
  });

  const count = counter(options, total);
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on("close", resolve);
    parser.on("error", reject);
    count.on("error", reject);
    req.on("error", reject);
    // A connection dropped mid-body never reaches the parser's end: fail instead of waiting.
    req.on("close", () => {
      if (!req.complete) reject(new SimHttpError(400, "Bad Request", "the client went away mid-upload"));
    });
  });
  // Not stream.pipeline: it would destroy the request, and with it the socket the answer goes on.
  req.pipe(count).pipe(parser);
  try {
    await parsed;
    await Promise.all(writes);
  } catch (error) {
    req.unpipe(count);
    count.destroy();
    parser.destroy();
    // Read the rest and drop it, so the client sees the answer instead of a reset (lingering close).
    req.resume();
    await Promise.allSettled(writes);
    const tempPath = file?.tempPath;
    if (tempPath !== undefined) await rm(tempPath, { force: true });
    if (error instanceof SimHttpError) throw error;
    throw new SimHttpError(400, "Bad Request", `malformed form: ${String(error)}`);
  }
  return { fields, file, bodyBytes: total.bytes };
}
