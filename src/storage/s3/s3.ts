/**
 * A bucket of an S3 server (AWS, Ceph RGW, MinIO...), or a folder in it. Files up to the multipart
 * threshold go in one streamed PUT; larger ones as resumable multipart uploads. Folders are key
 * prefixes plus the `dir/` markers mkdir makes (see keys.ts). The wanted modification time is kept
 * in `x-amz-meta-mtime`; listings cannot show it (ListObjectsV2 has no metadata), `stat` does.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { PassThrough, Readable, addAbortSignal } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isFerryError, throwIfAborted, toFerryError } from "../../core/errors.ts";
import { ancestors } from "../../core/paths.ts";
import {
  defineStorageAdapter,
  type AdapterContext,
  type Capabilities,
  type Entry,
  type HashKind,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Upload,
  type UploadOptions,
  type WriteOptions,
} from "../adapter.ts";
import { S3Session } from "./client.ts";
import { s3Error, s3Failure, serviceCode } from "./errors.ts";
import { encodeKey, formatMtime, Keys, md5OfEtag, MTIME_META, parseMtime, spellings } from "./keys.ts";
import { listFolder } from "./listing.ts";
import { openMultipart } from "./multipart.ts";
import { MAX_CONCURRENCY, s3Kind, s3OptionsSchema, type S3Options } from "./options.ts";
import { PutUpload } from "./put.ts";
import { abortOrphans, abortUpload } from "./uploads.ts";

const MiB = 1024 * 1024;
/** CopyObject's limit: setModTime rewrites the object's metadata with a copy onto itself. */
const MAX_COPY_BYTES = 5 * 1024 * MiB;

const isMissing = (error: unknown) =>
  isFerryError(error, "NOT_FOUND") && serviceCode(error.cause) !== "NoSuchBucket";

class S3Storage implements StorageAdapter {
  readonly kind = "s3";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities> = s3Adapter.capabilities;
  readonly #s3: S3Session;
  readonly #keys: Keys;
  readonly #options: S3Options;

  constructor(options: S3Options, context: AdapterContext) {
    this.name = context.name;
    this.#options = options;
    this.#keys = new Keys(context.name, options.root);
    this.#s3 = new S3Session(
      {
        endpoint: options.endpoint,
        region: options.region,
        accessKeyId: options.access_key_id,
        secretAccessKey: options.secret_access_key,
        forcePathStyle: options.force_path_style,
        sockets: MAX_CONCURRENCY * (options.upload_concurrency + 1),
        partBuffers: 2 * options.upload_concurrency,
      },
      options.bucket,
      context.name,
      this.#keys,
      context.logger,
    );
  }

  #context(operation: string, path: string, signal?: AbortSignal) {
    return { storage: this.name, bucket: this.#options.bucket, operation, path, signal };
  }

  /** HEAD of the file under whichever spelling it is stored, or undefined when there is none. */
  async #head(
    path: string,
    signal: AbortSignal | undefined,
  ): Promise<{ path: string; head: HeadObjectCommandOutput } | undefined> {
    for (const spelling of spellings(path)) {
      try {
        const head = await this.#s3.call("stat", spelling, signal, (options) =>
          this.#s3.client.send(
            new HeadObjectCommand({ Bucket: this.#options.bucket, Key: this.#keys.file(spelling) }),
            options,
          ),
        );
        return { path: spelling, head };
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return undefined;
  }

  /** Up to `max` keys of the folder (its marker included), under whichever spelling has any. */
  async #peek(
    path: string,
    max: number,
    signal: AbortSignal | undefined,
  ): Promise<{ path: string; keys: string[] } | undefined> {
    for (const spelling of spellings(path)) {
      const prefix = this.#keys.folder(spelling);
      const page = await this.#s3.call("stat", spelling, signal, (options) =>
        this.#s3.client.send(
          new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: prefix, MaxKeys: max }),
          options,
        ),
      );
      const keys = (page.Contents ?? []).map((object) => object.Key ?? "");
      if (keys.length > 0) return { path: spelling, keys };
    }
    return undefined;
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    yield* listFolder(this.#s3, this.#keys.path(dir, false), options.recursive === true, signal);
  }

  async stat(path: string, options: OpOptions = {}): Promise<Entry> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, false);
    if (checked === "") {
      // The root is the bucket (or a folder of it): there when the bucket answers.
      await this.#s3.call("stat", "", signal, (o) =>
        this.#s3.client.send(
          new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: this.#keys.root, MaxKeys: 1 }),
          o,
        ),
      );
      return { path: "", type: "dir" };
    }
    const file = await this.#head(checked, signal);
    if (file) return fileEntry(file.path, file.head);
    const folder = await this.#peek(checked, 1, signal);
    if (folder) return { path: folder.path, type: "dir" };
    throw s3Failure("NOT_FOUND", this.#context("stat", checked), "no such file or folder");
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, offset = 0 } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, false);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw s3Failure("PROTOCOL", this.#context("read", checked), `offset ${offset} is not a byte position`);
    }
    for (const spelling of spellings(checked)) {
      try {
        const answer = await this.#s3.call("read", spelling, signal, (o) =>
          this.#s3.client.send(
            new GetObjectCommand({
              Bucket: this.#options.bucket,
              Key: this.#keys.file(spelling),
              ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
            }),
            o,
          ),
        );
        return this.#body(answer.Body as Readable | undefined, spelling, signal);
      } catch (error) {
        // A range starting at the end is refused (416) though it is simply empty.
        if (offset > 0 && serviceCode(isFerryError(error) ? error.cause : error) === "InvalidRange") {
          const { size } = await this.stat(spelling, { ...(signal ? { signal } : {}) });
          if (size === offset) return Readable.from([]);
          throw s3Failure(
            "PROTOCOL",
            this.#context("read", spelling),
            `offset ${offset} is past the end (${size ?? 0} bytes)`,
          );
        }
        if (!isMissing(error)) throw error;
      }
    }
    throw s3Failure("NOT_FOUND", this.#context("read", checked), "no such file");
  }

  /** The response body, its failures translated (a reset mid-read is TRANSIENT, not a bare socket error). */
  #body(body: Readable | undefined, path: string, signal: AbortSignal | undefined): Readable {
    const out = new PassThrough({ highWaterMark: 64 * 1024 });
    if (!body) return out.end();
    body.once("error", (error) => out.destroy(s3Error(error, this.#context("read", path, signal))));
    out.once("close", () => body.destroy());
    body.pipe(out);
    return signal ? addAbortSignal(signal, out) : out;
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    const { signal } = options;
    const upload = await this.openUpload(path, { ...options });
    try {
      return await upload.finish(source, signal ? { signal } : {});
    } catch (error) {
      if (source instanceof Readable) source.destroy();
      // Nobody keeps this upload's token: nothing may be left behind.
      await upload.abort().catch(() => undefined);
      throw error;
    }
  }

  async openUpload(path: string, options: UploadOptions): Promise<Upload> {
    const { signal, size, modTime, resume } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, true);
    if (checked === "")
      throw s3Failure("NAME_INVALID", this.#context("upload", path), "cannot write to the root folder");
    if (!Number.isSafeInteger(size) || size < 0) {
      throw s3Failure("PROTOCOL", this.#context("upload", checked), `size ${size} is not a byte count`);
    }
    // Ferry writes NFC, so a name sent from a Mac (NFD) is found by its usual spelling.
    const nfc = checked.normalize("NFC");
    const target = { path: nfc, key: this.#keys.file(nfc), size, modTime };
    if (size > this.#options.multipart_threshold) {
      return openMultipart(
        this.#s3,
        target,
        resume,
        { partSize: this.#options.part_size, concurrency: this.#options.upload_concurrency },
        signal,
      );
    }
    const stale =
      resume?.type === "s3-multipart" && resume.bucket === this.#options.bucket ? resume : undefined;
    if (typeof stale?.key === "string" && typeof stale.uploadId === "string") {
      // The file shrank below the threshold since: its big partial goes.
      await abortUpload(this.#s3, checked, stale.key, stale.uploadId, signal);
    }
    return new PutUpload(this.#s3, target);
  }

  async remove(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, false);
    if (checked === "")
      throw s3Failure("NAME_INVALID", this.#context("remove", path), "will not remove the root folder");
    const [file, folder] = await Promise.all([this.#head(checked, signal), this.#peek(checked, 2, signal)]);
    const found = file?.path ?? folder?.path ?? checked.normalize("NFC");
    // Uploads of this key that never completed go with it.
    const orphans = abortOrphans(this.#s3, found, this.#keys.file(found), signal).then(
      () => undefined,
      (error: unknown) => error,
    );
    const deleting = async (key: string) => {
      await this.#s3.call("remove", found, signal, (o) =>
        this.#s3.client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: key }), o),
      );
    };
    const removing = (async () => {
      if (file) {
        await deleting(this.#keys.file(file.path));
      } else if (folder) {
        const marker = this.#keys.folder(folder.path);
        if (folder.keys.some((key) => key !== marker)) {
          throw s3Failure("NOT_EMPTY", this.#context("remove", folder.path), "folder is not empty");
        }
        await deleting(marker);
      }
    })();
    // Both settle before the answer; the removal's own failure comes first.
    const [removed, swept] = await Promise.all([
      removing.then(
        () => undefined,
        (error: unknown) => error,
      ),
      orphans,
    ]);
    if (removed !== undefined) throw toFerryError(removed);
    if (swept !== undefined) throw toFerryError(swept);
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, true).normalize("NFC");
    if (checked === "") return;
    // A marker at every level, so that the parents stay when the folder is removed, as elsewhere.
    await Promise.all(
      [...ancestors(checked), checked].map((folder) =>
        this.#s3.call("mkdir", folder, signal, (o) =>
          this.#s3.client.send(
            new PutObjectCommand({
              Bucket: this.#options.bucket,
              Key: this.#keys.folder(folder),
              Body: "",
              ContentLength: 0,
            }),
            o,
          ),
        ),
      ),
    );
  }

  async setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, false);
    const file = await this.#head(checked, signal);
    if (!file) throw s3Failure("NOT_FOUND", this.#context("set the time of", checked), "no such file");
    const { head } = file;
    if ((head.ContentLength ?? 0) > MAX_COPY_BYTES) {
      throw s3Failure(
        "UNSUPPORTED",
        this.#context("set the time of", file.path),
        "S3 copies (and so re-times) objects up to 5 GiB only",
      );
    }
    const key = this.#keys.file(file.path);
    // Metadata can only change by a copy onto itself; the headers it replaces are carried over.
    await this.#s3.call("set the time of", file.path, signal, (o) =>
      this.#s3.client.send(
        new CopyObjectCommand({
          Bucket: this.#options.bucket,
          Key: key,
          CopySource: `${this.#options.bucket}/${encodeKey(key)}`,
          MetadataDirective: "REPLACE",
          Metadata: { ...head.Metadata, [MTIME_META]: formatMtime(modTime) },
          ...(head.ContentType === undefined ? {} : { ContentType: head.ContentType }),
          ...(head.CacheControl === undefined ? {} : { CacheControl: head.CacheControl }),
          ...(head.ContentDisposition === undefined ? {} : { ContentDisposition: head.ContentDisposition }),
          ...(head.ContentEncoding === undefined ? {} : { ContentEncoding: head.ContentEncoding }),
          ...(head.ContentLanguage === undefined ? {} : { ContentLanguage: head.ContentLanguage }),
        }),
        o,
      ),
    );
  }

  async hash(path: string, kind: HashKind, options: OpOptions = {}): Promise<string> {
    const { signal } = options;
    throwIfAborted(signal);
    const checked = this.#keys.path(path, false);
    if (kind !== "md5")
      throw s3Failure("UNSUPPORTED", this.#context("hash", checked), `no ${kind} digests here`);
    const file = await this.#head(checked, signal);
    if (!file) throw s3Failure("NOT_FOUND", this.#context("hash", checked), "no such file");
    const fromEtag = md5OfEtag(file.head.ETag);
    if (fromEtag !== undefined) return fromEtag;
    // A multipart object's ETag is no MD5 of the content: read it.
    const digest = createHash("md5");
    const stream = await this.read(file.path, signal ? { signal } : {});
    await pipeline(stream, digest, signal ? { signal } : {}).catch((error: unknown) => {
      throw s3Error(error, this.#context("hash", file.path, signal));
    });
    return digest.digest("hex");
  }

  close(): Promise<void> {
    this.#s3.close();
    return Promise.resolve();
  }
}

function fileEntry(path: string, head: HeadObjectCommandOutput): Entry {
  const md5 = md5OfEtag(head.ETag);
  const modTime = parseMtime(head.Metadata?.[MTIME_META]) ?? head.LastModified?.getTime();
  return {
    path,
    type: "file",
    size: head.ContentLength ?? 0,
    ...(modTime === undefined ? {} : { modTime }),
    ...(md5 === undefined ? {} : { hashes: { md5 } }),
  };
}

export { s3OptionsSchema, type S3Options };

export const s3Adapter = defineStorageAdapter<S3Options>({
  ...s3Kind,
  create: (options, context) => new S3Storage(options, context),
});
