/**
 * Files above the multipart threshold: a multipart upload whose id lives in the resume token. Parts
 * are cut from the stream, several in flight at once; each finished part that extends the unbroken
 * run from part 1 is reported stored. A resume asks the server (ListParts) which parts it holds and
 * sends only the others. The object stays invisible until CompleteMultipartUpload.
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { FerryError, throwIfAborted } from "../../core/errors.ts";
import type { Entry, FinishOptions, OpOptions, Upload, UploadToken } from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import type { S3Session } from "./client.ts";
import { s3Error, s3Failure } from "./errors.ts";
import { md5OfEtag } from "./keys.ts";
import { MAX_PARTS } from "./options.ts";
import { PartReader, type Source } from "./part-reader.ts";
import { metadataFor, type Target } from "./put.ts";
import {
  abortOrphans,
  abortUpload,
  completedBy,
  gone,
  listParts,
  NONCE_META,
  type StoredPart,
} from "./uploads.ts";

const MiB = 1024 * 1024;

const tokenSchema = z.object({
  v: z.literal(1),
  type: z.literal("s3-multipart"),
  bucket: z.string(),
  key: z.string(),
  uploadId: z.string().min(1),
  nonce: z.string(),
  partSize: z.number().int().min(1),
  size: z.number().int().nonnegative(),
  modTime: z.number().nullable(),
  /** Parts 1..parts were stored when the token was given. */
  parts: z.number().int().nonnegative(),
});
type MultipartToken = z.infer<typeof tokenSchema>;

export interface MultipartSettings {
  partSize: number;
  /** Parts in flight at once. */
  concurrency: number;
}

/** The configured part size, or more where 10,000 parts would not hold the file. */
export function partSizeFor(size: number, configured: number): number {
  const least = Math.ceil(size / MAX_PARTS);
  return least <= configured ? configured : Math.ceil(least / MiB) * MiB;
}

const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");

/** Resumes the upload `resume` names when it still fits this file and exists; else starts one. */
export async function openMultipart(
  s3: S3Session,
  target: Target,
  resume: UploadToken | undefined,
  settings: MultipartSettings,
  signal: AbortSignal | undefined,
): Promise<Upload> {
  const parsed = tokenSchema.safeParse(resume);
  const token = parsed.success && parsed.data.bucket === s3.bucket ? parsed.data : undefined;
  if (token) {
    const fits =
      token.key === target.key && token.size === target.size && token.modTime === (target.modTime ?? null);
    if (fits) {
      const parts = await listParts(s3, target, token.uploadId, signal);
      if (parts) return new MultipartUpload(s3, target, settings.concurrency, token, parts);
      if (await completedBy(s3, target, token.nonce, signal)) return new CompletedUpload(target, token);
    } else if (token.key !== target.key) {
      // Another path's partial (the orphan sweep below covers this key's).
      await abortUpload(s3, target.path, token.key, token.uploadId, signal);
    }
  }
  await abortOrphans(s3, target.path, target.key, signal);
  const nonce = randomBytes(8).toString("hex");
  const created = await s3.call("start the upload of", target.path, signal, (options) =>
    s3.client.send(
      new CreateMultipartUploadCommand({
        Bucket: s3.bucket,
        Key: target.key,
        Metadata: { ...metadataFor(target.modTime), [NONCE_META]: nonce },
      }),
      options,
    ),
  );
  if (created.UploadId === undefined || created.UploadId === "") {
    throw s3Failure(
      "PROTOCOL",
      context(s3, "start the upload of", target.path),
      "the server gave no upload id",
    );
  }
  const fresh: MultipartToken = {
    v: 1,
    type: "s3-multipart",
    bucket: s3.bucket,
    key: target.key,
    uploadId: created.UploadId,
    nonce,
    partSize: partSizeFor(target.size, settings.partSize),
    size: target.size,
    modTime: target.modTime ?? null,
    parts: 0,
  };
  return new MultipartUpload(s3, target, settings.concurrency, fresh, new Map());
}

const context = (s3: S3Session, operation: string, path: string, signal?: AbortSignal) => ({
  storage: s3.name,
  bucket: s3.bucket,
  operation,
  path,
  signal,
});

class MultipartUpload implements Upload {
  readonly offset: number;
  readonly token: UploadToken;
  readonly #s3: S3Session;
  readonly #target: Target;
  readonly #concurrency: number;
  readonly #base: MultipartToken;
  readonly #stored: Map<number, StoredPart>;
  /** Parts 1..#prefix are on the server, whole. */
  readonly #prefix: number;
  readonly #count: number;

  constructor(
    s3: S3Session,
    target: Target,
    concurrency: number,
    token: MultipartToken,
    stored: Map<number, StoredPart>,
  ) {
    this.#s3 = s3;
    this.#target = target;
    this.#concurrency = concurrency;
    this.#base = token;
    this.#stored = stored;
    this.#count = Math.max(1, Math.ceil(target.size / token.partSize));
    let prefix = 0;
    while (prefix < this.#count && stored.get(prefix + 1)?.size === this.#lengthOf(prefix + 1)) prefix++;
    this.#prefix = prefix;
    this.offset = Math.min(prefix * token.partSize, target.size);
    this.token = this.#tokenFor(prefix);
  }

  #lengthOf(part: number): number {
    const { partSize } = this.#base;
    return part < this.#count ? partSize : this.#target.size - (this.#count - 1) * partSize;
  }

  #tokenFor(parts: number): UploadToken {
    return { ...this.#base, parts };
  }

  async finish(rest: Source, options: FinishOptions = {}): Promise<Entry> {
    const { signal, onStored } = options;
    throwIfAborted(signal);
    const { path, size } = this.#target;
    const reader = new PartReader(rest);
    // Stops every part in flight at the first failure, or when the caller aborts.
    const controller = new AbortController();
    const stop = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", stop, { once: true });
    const etags = new Map<number, string>();
    for (let part = 1; part <= this.#prefix; part++) etags.set(part, this.#stored.get(part)?.etag ?? "");
    let prefix = this.#prefix;
    const finished = (part: number, etag: string) => {
      etags.set(part, etag);
      const before = prefix;
      while (etags.has(prefix + 1)) prefix++;
      if (prefix > before) {
        onStored?.({ bytes: Math.min(prefix * this.#base.partSize, size), token: this.#tokenFor(prefix) });
      }
    };
    const inFlight = new Set<Promise<void>>();
    let failure: FerryError | undefined;
    try {
      for (let part = this.#prefix + 1; part <= this.#count; part++) {
        while (inFlight.size >= this.#concurrency) await Promise.race(inFlight);
        if (failure !== undefined) break;
        const length = this.#lengthOf(part);
        const budget = this.#s3.partBudget;
        const granted = await budget.acquire(controller.signal);
        // The buffer is filled again only once the request that sent it has settled.
        const buffer = budget.take(length);
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          budget.give(buffer);
          granted();
        };
        let bytes: Buffer | undefined;
        try {
          bytes = await reader.read(length, controller.signal, buffer);
        } finally {
          if (!bytes) release();
        }
        if (!bytes) throw sizeMismatch(this.#s3.name, path, size, `only ${this.offset + reader.received}`);
        const known = this.#stored.get(part);
        // A part past a gap is sent again unless the server's copy is these very bytes.
        if (known?.size === length && md5OfEtag(known.etag) === md5(bytes)) {
          release();
          finished(part, known.etag);
          continue;
        }
        const sending = this.#sendPart(part, bytes, controller.signal).then(
          (etag) => finished(part, etag),
          (error: unknown) => {
            failure ??= this.#translate(error, `upload part ${part} of`, signal);
            controller.abort(failure);
          },
        );
        void sending.finally(release);
        const tracked = sending.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
      if (failure === undefined && !(await reader.ended(controller.signal))) {
        throw sizeMismatch(this.#s3.name, path, size, "more");
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      await this.#complete(etags, signal);
      // An upload started by an attempt that was killed before it kept its token would stay behind
      // (and be billed) for good: the key is whole now, so any other upload of it is an orphan.
      await abortOrphans(this.#s3, path, this.#target.key, signal).catch(() => undefined);
      return { path, type: "file", size };
    } catch (error) {
      failure ??= this.#translate(error, "upload", signal);
      controller.abort(failure);
      await Promise.allSettled(inFlight);
      reader.close();
      throw failure;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }

  async #sendPart(part: number, bytes: Buffer, signal: AbortSignal): Promise<string> {
    const { ETag } = await this.#s3.client.send(
      new UploadPartCommand({
        Bucket: this.#s3.bucket,
        Key: this.#target.key,
        UploadId: this.#base.uploadId,
        PartNumber: part,
        Body: bytes,
        ContentLength: bytes.length,
      }),
      { abortSignal: signal },
    );
    if (ETag === undefined) throw new FerryError("PROTOCOL", `${this.#s3.name}: part ${part} got no ETag`);
    return ETag;
  }

  async #complete(etags: Map<number, string>, signal: AbortSignal | undefined): Promise<void> {
    const parts = Array.from({ length: this.#count }, (_, i) => ({
      PartNumber: i + 1,
      ETag: etags.get(i + 1) ?? "",
    }));
    try {
      await this.#s3.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#s3.bucket,
          Key: this.#target.key,
          UploadId: this.#base.uploadId,
          MultipartUpload: { Parts: parts },
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (error) {
      throw this.#translate(error, "complete the upload of", signal);
    }
  }

  /** A FerryError; an upload aborted meanwhile (by a fresh start elsewhere) is worth a retry, which starts over. */
  #translate(error: unknown, operation: string, signal: AbortSignal | undefined): FerryError {
    const translated = s3Error(error, context(this.#s3, operation, this.#target.path, signal));
    if (!gone(translated)) return translated;
    return new FerryError(
      "TRANSIENT",
      `${this.#s3.name}: ${this.#target.path}: the upload was aborted meanwhile`,
      {
        cause: error,
        subject: this.#target.path,
      },
    );
  }

  abort(options: OpOptions = {}): Promise<void> {
    return abortUpload(this.#s3, this.#target.path, this.#target.key, this.#base.uploadId, options.signal);
  }
}

/** The token's upload completed (its answer was lost): the file is whole under its name. */
class CompletedUpload implements Upload {
  readonly offset: number;
  readonly token: UploadToken;
  readonly #target: Target;

  constructor(target: Target, token: MultipartToken) {
    this.#target = target;
    this.offset = target.size;
    this.token = token;
  }

  async finish(rest: Source, options: FinishOptions = {}): Promise<Entry> {
    const reader = new PartReader(rest);
    try {
      if (!(await reader.ended(options.signal))) {
        throw new FerryError("PROTOCOL", `${this.#target.path}: bytes past the end of a finished upload`, {
          subject: this.#target.path,
        });
      }
    } finally {
      reader.close();
    }
    return { path: this.#target.path, type: "file", size: this.#target.size };
  }

  /** Nothing partial is left to throw away; the finished file stays. */
  abort(): Promise<void> {
    return Promise.resolve();
  }
}
