/**
 * File uploads: one multipart/form-data request read with busboy, its file part streamed straight
 * into a store (the file library), never held in memory. Text fields are collected whatever their
 * order (PrusaSlicer sends `print` and `path` before the file, OctoPrint's own page after it).
 *
 * A file past `maxBytes` stops the reading at once: 413, the connection closed (so the rest of a
 * large body is not read for nothing), nothing kept. A client that goes away mid-body ends the
 * store's stream with an error, so nothing partial is kept either.
 */
import type { Readable } from "node:stream";
import busboy from "busboy";
import type { FastifyRequest } from "fastify";
import { isFerryError } from "../core/errors.ts";
import { HttpProblem } from "./problems.ts";
import type { RouteServer } from "./route.ts";

/** Lets a routes plugin's scope take multipart bodies: the route reads `request.raw` itself. */
export function acceptMultipart(server: RouteServer): void {
  server.addContentTypeParser("multipart/form-data", (_request, _payload, done) => {
    done(null, undefined);
  });
}

export interface Upload<T> {
  /** Text fields by name (the first value of each). */
  fields: Map<string, string>;
  /** What `store` made of the file part; undefined when the request had none. */
  file: { filename: string; stored: T } | undefined;
}

export interface UploadOptions<T> {
  /** The form field of the file. */
  field: string;
  /** Largest file, in bytes. */
  maxBytes: number;
  /** Consumes the file's bytes (to the end, or throws). */
  store: (stream: Readable, filename: string) => Promise<T>;
}

const MAX_FIELDS = 20;
const MAX_FIELD_BYTES = 64 * 1024;

export function tooLarge(maxBytes: number): HttpProblem {
  return new HttpProblem(
    413,
    "body-too-large",
    "File too large",
    `the file is larger than the library's limit of ${maxBytes} bytes`,
    // The rest of the body is not read: the connection cannot be used again.
    { headers: { connection: "close" } },
  );
}

export async function readUpload<T>(request: FastifyRequest, options: UploadOptions<T>): Promise<Upload<T>> {
  const raw = request.raw;
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: raw.headers,
      // Slicers send UTF-8 file names as they are; busboy would read them as Latin-1.
      defParamCharset: "utf8",
      limits: {
        // One byte more than allowed, so "exactly the limit" and "over it" can be told apart.
        fileSize: options.maxBytes + 1,
        files: 1,
        fields: MAX_FIELDS,
        fieldSize: MAX_FIELD_BYTES,
      },
    });
  } catch (error) {
    throw new HttpProblem(
      415,
      "unsupported-media-type",
      "Unsupported media type",
      `send multipart/form-data with the file in the field "${options.field}" (${(error as Error).message})`,
    );
  }
  const fields = new Map<string, string>();
  let file: { filename: string; stored: Promise<T> } | undefined;
  let failure: Error | undefined;
  /** The file part being read: ended with the error when the request fails, so the store stops. */
  let reading: Readable | undefined;

  return new Promise<Upload<T>>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      failure ??= error instanceof Error ? error : new Error(String(error));
      if (settled) return;
      settled = true;
      raw.unpipe(parser);
      if (reading && !reading.readableEnded) reading.destroy(failure);
      reject(failure);
    };
    parser.on("field", (name, value, info) => {
      if (info.valueTruncated)
        fail(badRequest(`the field "${name}" is longer than ${MAX_FIELD_BYTES} bytes`, name));
      else if (!fields.has(name)) fields.set(name, value);
    });
    parser.on("file", (name, stream: Readable, info) => {
      if (name !== options.field) {
        stream.resume();
        fail(badRequest(`unexpected file in the field "${name}"; the file goes in "${options.field}"`, name));
        return;
      }
      stream.on("limit", () => fail(tooLarge(options.maxBytes)));
      const filename = info.filename ?? "";
      reading = stream;
      // Destroyed with the request's error on failure: the store sees it; nobody else must throw it.
      stream.on("error", () => undefined);
      const stored = options.store(stream, filename);
      // A store that refuses before reading (a bad name) must not stall the parser.
      stored.catch((error: unknown) => {
        stream.resume();
        fail(isFerryError(error, "NO_SPACE") ? tooLarge(options.maxBytes) : error);
      });
      file = { filename, stored };
    });
    parser.on("filesLimit", () => fail(badRequest("only one file per request", options.field)));
    parser.on("fieldsLimit", () => fail(badRequest(`at most ${MAX_FIELDS} fields`, "body")));
    parser.on("error", (error: Error) =>
      fail(badRequest(`malformed multipart body: ${error.message}`, "body")),
    );
    raw.on("close", () => {
      if (raw.complete || settled) return;
      fail(badRequest("the client went away mid-upload", "body"));
    });
    parser.on("close", () => {
      if (settled) return;
      const done = file;
      if (!done) {
        settled = true;
        resolve({ fields, file: undefined });
        return;
      }
      done.stored.then(
        (stored) => {
          if (settled) return;
          settled = true;
          resolve({ fields, file: { filename: done.filename, stored } });
        },
        () => undefined, // fail() has answered
      );
    });
    raw.pipe(parser);
  });
}

function badRequest(detail: string, subject: string): HttpProblem {
  return new HttpProblem(400, "validation", "Invalid request", detail, { subject });
}
