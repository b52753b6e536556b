/**
 * Files up to the multipart threshold: one PutObject with Content-Length. The object appears whole
 * when the PUT succeeds, or not at all. Small files are read whole first (a source of the wrong
 * size sends nothing); larger ones are streamed, and a stream shorter or longer than announced
 * cancels the request, so the server never completes it.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Readable, Transform } from "node:stream";
import { FerryError, throwIfAborted, toFerryError } from "../../core/errors.ts";
import type { Entry, FinishOptions, OpOptions, Upload, UploadToken } from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import type { S3Session } from "./client.ts";
import { s3Error } from "./errors.ts";
import { formatMtime, md5OfEtag, MTIME_META } from "./keys.ts";
import { PartReader, type Source } from "./part-reader.ts";

export interface Target {
  path: string;
  key: string;
  size: number;
  modTime: number | undefined;
}

/** Metadata every object Ferry writes carries: the wanted modification time. */
export function metadataFor(modTime: number | undefined): Record<string, string> {
  return modTime === undefined ? {} : { [MTIME_META]: formatMtime(modTime) };
}

/** Files up to this size are read into memory before their PUT: less work per small file than a stream. */
const BUFFERED_BYTES = 1024 * 1024;

export function putObject(
  s3: S3Session,
  target: Target,
  source: Source,
  signal: AbortSignal | undefined,
): Promise<Entry> {
  throwIfAborted(signal);
  return target.size <= BUFFERED_BYTES
    ? putBuffered(s3, target, source, signal)
    : putStreamed(s3, target, source, signal);
}

function stored(target: Target, etag: string | undefined): Entry {
  const md5 = md5OfEtag(etag);
  return {
    path: target.path,
    type: "file",
    size: target.size,
    ...(md5 === undefined ? {} : { hashes: { md5 } }),
  };
}

async function putBuffered(
  s3: S3Session,
  target: Target,
  source: Source,
  signal: AbortSignal | undefined,
): Promise<Entry> {
  const { path, size } = target;
  const reader = new PartReader(source);
  let body: Buffer | undefined;
  try {
    body = await reader.read(size, signal);
    if (!body) throw sizeMismatch(s3.name, path, size, `only ${reader.received}`);
    if (!(await reader.ended(signal))) throw sizeMismatch(s3.name, path, size, "more");
  } catch (error) {
    reader.close();
    throw toFerryError(error);
  }
  const answer = await s3.call("upload", path, signal, (options) =>
    s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: target.key,
        Body: body,
        ContentLength: size,
        Metadata: metadataFor(target.modTime),
      }),
      options,
    ),
  );
  return stored(target, answer.ETag);
}

async function putStreamed(
  s3: S3Session,
  target: Target,
  source: Source,
  signal: AbortSignal | undefined,
): Promise<Entry> {
  const { path, key, size } = target;
  // Cancels the request when the caller aborts or when the body turns out wrong.
  const controller = new AbortController();
  const stop = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", stop, { once: true });
  let bodyError: FerryError | undefined;
  const fail = (error: FerryError) => {
    bodyError ??= error;
    controller.abort(error);
  };
  let received = 0;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > size) {
        fail(sizeMismatch(s3.name, path, size, "more"));
        done(bodyError);
        return;
      }
      done(null, chunk);
    },
    flush(done) {
      if (received < size) {
        fail(sizeMismatch(s3.name, path, size, `only ${received}`));
        done(bodyError);
        return;
      }
      done();
    },
  });
  // Its failures are reported through `bodyError` (the SDK does not listen for them).
  body.on("error", () => undefined);
  const readable = source instanceof Readable ? source : Readable.from(source);
  readable.once("error", (error: unknown) => {
    fail(toFerryError(error));
    body.destroy(bodyError);
  });
  readable.pipe(body);
  try {
    const answer = await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: key,
        Body: body,
        ContentLength: size,
        Metadata: metadataFor(target.modTime),
      }),
      { abortSignal: controller.signal },
    );
    return stored(target, answer.ETag);
  } catch (error) {
    readable.destroy();
    if (signal?.aborted)
      throw s3Error(error, { storage: s3.name, bucket: s3.bucket, operation: "upload", path, signal });
    if (bodyError) throw bodyError;
    throw s3Error(error, { storage: s3.name, bucket: s3.bucket, operation: "upload", path });
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}

/** An upload that cannot resume: nothing is stored until its one PUT succeeds. */
export class PutUpload implements Upload {
  readonly offset = 0;
  readonly token: UploadToken;
  readonly #s3: S3Session;
  readonly #target: Target;

  constructor(s3: S3Session, target: Target) {
    this.#s3 = s3;
    this.#target = target;
    this.token = { v: 1, type: "s3-put", bucket: s3.bucket, key: target.key, size: target.size };
  }

  finish(rest: Source, options: FinishOptions = {}): Promise<Entry> {
    return putObject(this.#s3, this.#target, rest, options.signal);
  }

  abort(_options?: OpOptions): Promise<void> {
    return Promise.resolve();
  }
}
