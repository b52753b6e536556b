/**
 * A multipart/form-data body (RFC 7578) of text fields and one file, streamed: the parts around the
 * file are built up front, so the exact Content-Length is known before the first byte goes, and the
 * file's bytes pass through without being held. The source must give exactly `size` bytes; the
 * closing boundary is sent only after its end, so a short or long source never looks complete.
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";

export interface FilePart {
  field: string;
  filename: string;
  size: number;
  contentType?: string;
}

const CRLF = "\r\n";

/**
 * A name as a quoted-string. Quotes and backslashes are escaped as quoted-pairs, which busboy,
 * Tornado, Go, PHP and Python unescape; browsers write `"` as `%22` instead, which servers keep
 * as those three characters. CR, LF and other control characters cannot be sent (the adapter
 * refuses them as names). RFC 7578 §4.2 rules out `filename*`, so UTF-8 goes as it is.
 */
export function quoteName(name: string): string {
  return `"${name.replace(/["\\]/g, "\\$&")}"`;
}

export class MultipartBody {
  readonly boundary: string;
  /** Header value of the request's Content-Type. */
  readonly contentType: string;
  /** Exact bytes of the whole body. */
  readonly length: number;
  readonly size: number;
  readonly #head: Buffer;
  readonly #tail: Buffer;

  constructor(fields: readonly (readonly [string, string])[], file: FilePart, boundary?: string) {
    this.boundary = boundary ?? `----FerryFormBoundary${randomBytes(12).toString("hex")}`;
    this.contentType = `multipart/form-data; boundary=${this.boundary}`;
    const dash = `--${this.boundary}`;
    let head = "";
    for (const [name, value] of fields) {
      head += `${dash}${CRLF}Content-Disposition: form-data; name=${quoteName(name)}${CRLF}${CRLF}${value}${CRLF}`;
    }
    head +=
      `${dash}${CRLF}Content-Disposition: form-data; name=${quoteName(file.field)}; filename=${quoteName(file.filename)}${CRLF}` +
      `Content-Type: ${file.contentType ?? "application/octet-stream"}${CRLF}${CRLF}`;
    this.#head = Buffer.from(head, "utf8");
    this.#tail = Buffer.from(`${CRLF}${dash}--${CRLF}`, "utf8");
    this.size = file.size;
    this.length = this.#head.length + file.size + this.#tail.length;
  }

  /**
   * The body's chunks: the head, exactly `size` bytes of `source`, the tail. Throws `mismatch()`'s
   * error when the source gives fewer or more bytes.
   */
  async *chunks(
    source: Readable | AsyncIterable<Uint8Array>,
    mismatch: (sent: number) => Error,
  ): AsyncGenerator<Uint8Array> {
    yield this.#head;
    let sent = 0;
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      sent += chunk.length;
      // Past `size` is an error before anything of the chunk goes: the server never sees a whole body.
      if (sent > this.size) throw mismatch(sent);
      yield chunk;
    }
    if (sent !== this.size) throw mismatch(sent);
    yield this.#tail;
  }
}

/** A multipart/form-data body of text fields only (a form without a file), built at once. */
export function fieldsForm(
  fields: readonly (readonly [string, string])[],
  boundary = `----FerryFormBoundary${randomBytes(12).toString("hex")}`,
): { contentType: string; body: Buffer } {
  const dash = `--${boundary}`;
  let text = "";
  for (const [name, value] of fields) {
    text += `${dash}${CRLF}Content-Disposition: form-data; name=${quoteName(name)}${CRLF}${CRLF}${value}${CRLF}`;
  }
  text += `${dash}--${CRLF}`;
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.from(text, "utf8") };
}
