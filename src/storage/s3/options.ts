/** The options of an S3 device in ferry.yaml, and what such a device can do. */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import type { Capabilities, StorageKind } from "../adapter.ts";
import { FORBIDDEN_CHARS, MAX_KEY_BYTES } from "./keys.ts";

const MiB = 1024 * 1024;
/** S3's limits: parts of at least 5 MiB (but the last), at most 10,000 of them. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PARTS = 10_000;
/** Transfers at once: S3 servers take many requests in parallel; small files are latency-bound. */
export const MAX_CONCURRENCY = 16;

export const s3OptionsSchema = z
  .strictObject({
    /** The server's URL; omitted: AWS for `region`. */
    endpoint: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    region: z.string().min(1).default("us-east-1"),
    bucket: z.string().min(3).max(255),
    access_key_id: z.string().min(1),
    secret_access_key: secretString(),
    /** Bucket in the path (http://host/bucket/key) instead of the host name (needed by most non-AWS servers). */
    force_path_style: z.boolean().default(false),
    /** Folder inside the bucket that this device is (default: the whole bucket). */
    root: z
      .string()
      .refine((root) => !root.split("/").includes(".."), "may not contain ..")
      .default(""),
    /** Bytes per part of a multipart upload (S3: at least 5 MiB). */
    part_size: z
      .number()
      .int()
      .min(MIN_PART_SIZE, "S3 parts have at least 5 MiB")
      .max(5 * 1024 * MiB)
      .default(8 * MiB),
    /** Files larger than this go as resumable multipart uploads (default: part_size); smaller in one PUT. */
    multipart_threshold: z
      .number()
      .int()
      .min(0)
      .max(5 * 1024 * MiB, "one PUT takes at most 5 GiB")
      .optional(),
    /** Parts of one file in flight at once. */
    upload_concurrency: z.number().int().min(1).max(32).default(4),
  })
  .transform((options) => ({
    ...options,
    multipart_threshold: options.multipart_threshold ?? options.part_size,
  }));

export type S3Options = z.output<typeof s3OptionsSchema>;

export const capabilities: Capabilities = {
  read: true,
  write: true,
  list: "recursive",
  listSizes: true,
  modTimePrecisionMs: 1,
  setModTime: true,
  hashes: ["md5"],
  rangeRead: true,
  resumableWrite: "multipart",
  partialWritesVisible: false,
  atomicRename: false,
  serverSideMove: false,
  maxConcurrency: MAX_CONCURRENCY,
  forbiddenChars: FORBIDDEN_CHARS,
  maxNameBytes: MAX_KEY_BYTES,
  caseInsensitive: false,
  watch: false,
  usage: false,
  removable: false,
};

export const s3Kind: StorageKind<S3Options> = { kind: "s3", optionsSchema: s3OptionsSchema, capabilities };
