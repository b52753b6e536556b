/**
 * The server's side of multipart uploads: which parts an upload holds, aborting one or all of a
 * key's, and finding out whether an upload whose answer was lost did complete.
 */
import {
  AbortMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
} from "@aws-sdk/client-s3";
import { isFerryError } from "../../core/errors.ts";
import type { S3Session } from "./client.ts";
import { serviceCode } from "./errors.ts";
import type { Target } from "./put.ts";

/** Metadata naming the upload an object came from: a lost Complete answer is found out on resume. */
export const NONCE_META = "ferry-upload";

export interface StoredPart {
  etag: string;
  size: number;
}

/** The upload id is unknown to the server: aborted, completed, or never there (RGW says NoSuchKey). */
export function gone(error: unknown): boolean {
  const code = isFerryError(error, "NOT_FOUND") ? serviceCode(error.cause) : undefined;
  return code === "NoSuchUpload" || code === "NoSuchKey";
}

/** The parts the server holds for the upload, or undefined when the upload is gone. */
export async function listParts(
  s3: S3Session,
  target: Target,
  uploadId: string,
  signal: AbortSignal | undefined,
): Promise<Map<number, StoredPart> | undefined> {
  const parts = new Map<number, StoredPart>();
  let marker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await s3.call("list the parts of", target.path, signal, (options) =>
        s3.client.send(
          new ListPartsCommand({
            Bucket: s3.bucket,
            Key: target.key,
            UploadId: uploadId,
            ...(marker === undefined ? {} : { PartNumberMarker: marker }),
          }),
          options,
        ),
      );
    } catch (error) {
      if (gone(error)) return undefined;
      throw error;
    }
    for (const part of page.Parts ?? []) {
      if (part.PartNumber !== undefined && part.ETag !== undefined && part.Size !== undefined) {
        parts.set(part.PartNumber, { etag: part.ETag, size: part.Size });
      }
    }
    if (page.IsTruncated !== true || page.NextPartNumberMarker === undefined) return parts;
    marker = page.NextPartNumberMarker;
  }
}

/** Aborts one upload; one that is gone already is fine. */
export async function abortUpload(
  s3: S3Session,
  path: string,
  key: string,
  uploadId: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    await s3.call("abort the upload of", path, signal, (options) =>
      s3.client.send(
        new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId }),
        options,
      ),
    );
  } catch (error) {
    if (!gone(error)) throw error;
  }
}

/** Aborts every incomplete upload of exactly `key` (left by crashes, or by other tools). */
export async function abortOrphans(
  s3: S3Session,
  path: string,
  key: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    const page = await s3.call("list the uploads of", path, signal, (options) =>
      s3.client.send(
        new ListMultipartUploadsCommand({
          Bucket: s3.bucket,
          Prefix: key,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
        }),
        options,
      ),
    );
    const orphans = (page.Uploads ?? []).filter((u) => u.Key === key && u.UploadId !== undefined);
    await Promise.all(orphans.map((u) => abortUpload(s3, path, key, u.UploadId ?? "", signal)));
    if (page.IsTruncated !== true) return;
    keyMarker = page.NextKeyMarker;
    idMarker = page.NextUploadIdMarker;
    if (keyMarker === undefined) return;
  }
}

/** Whether the object under the key is what the upload marked `nonce` completed (its answer got lost). */
export async function completedBy(s3: S3Session, target: Target, nonce: string, signal?: AbortSignal) {
  try {
    const head = await s3.call("stat", target.path, signal, (options) =>
      s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: target.key }), options),
    );
    return head.Metadata?.[NONCE_META] === nonce && head.ContentLength === target.size;
  } catch (error) {
    if (isFerryError(error, "NOT_FOUND") && serviceCode(error.cause) !== "NoSuchBucket") return false;
    throw error;
  }
}
