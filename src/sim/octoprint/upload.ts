/**
 * Reads one multipart/form-data request as OctoPrint's Tornado front does before Flask sees it:
 * every part with a file name is a file, the `file` part is kept (streamed into memory and hashed
 * with SHA-1 as it arrives), other parts are text fields. The whole body is read before the API
 * decides anything, as on the real server. Rejects when the body is malformed or the client goes
 * away before its end (nothing is kept then).
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import busboy from "busboy";
import { abort, SimHttpError } from "./http.ts";

export interface UploadedFile {
  /** As the client sent it (`filename*` when present), path elements included. */
  filename: string;
  content: Buffer | undefined;
  size: number;
  sha1: string;
}

export interface ParsedUpload {
  /** Text fields (the first value of each name, as werkzeug's MultiDict gives). */
  fields: Map<string, string>;
  file: UploadedFile | undefined;
}

export interface UploadHooks {
  /** Keep the bytes (false: size and hash only). */
  storeContent: boolean;
  /** Awaited after each chunk of the `file` part, before the next is read (holds and rate limits). */
  afterChunk(bytes: number, total: number): Promise<void> | void;
}

export async function parseUpload(req: IncomingMessage, hooks: UploadHooks): Promise<ParsedUpload> {
  let parser: busboy.Busboy;
  try {
    // preservePath: Tornado keeps a file name's folders ("a/b.gcode"), which OctoPrint then uses.
    parser = busboy({ headers: req.headers, defParamCharset: "utf8", preservePath: true });
  } catch {
    throw abort(400);
  }
  const fields = new Map<string, string>();
  let file: UploadedFile | undefined;
  const reads: Promise<void>[] = [];

  parser.on("field", (name, value) => {
    if (!fields.has(name)) fields.set(name, value);
  });
  parser.on("file", (name, stream: Readable, info) => {
    if (name !== "file" || file !== undefined) {
      stream.resume();
      return;
    }
    const found: UploadedFile = { filename: info.filename ?? "", content: undefined, size: 0, sha1: "" };
    file = found;
    reads.push(
      (async () => {
        const hash = createHash("sha1");
        const chunks: Buffer[] = [];
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          hash.update(chunk);
          found.size += chunk.length;
          if (hooks.storeContent) chunks.push(chunk);
          await hooks.afterChunk(chunk.length, found.size);
        }
        found.sha1 = hash.digest("hex");
        found.content = hooks.storeContent ? Buffer.concat(chunks, found.size) : undefined;
      })(),
    );
  });

  const done = new Promise<void>((resolve, reject) => {
    parser.on("close", resolve);
    parser.on("error", reject);
    req.on("error", reject);
    // A connection dropped mid-body never reaches the parser's end: fail instead of waiting.
    req.on("close", () => {
      if (!req.complete) reject(abort(400, "the client went away mid-upload"));
    });
  });
  req.pipe(parser);
  try {
    await done;
    await Promise.all(reads);
  } catch (error) {
    req.unpipe(parser);
    parser.destroy();
    req.resume();
    await Promise.allSettled(reads);
    throw error instanceof SimHttpError ? error : abort(400);
  }
  return { fields, file };
}
