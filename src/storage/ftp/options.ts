/** The ftp adapter's options in ferry.yaml and what it can do (README.md says why). */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import type { Capabilities, StorageKind } from "../adapter.ts";

/** FTP commands are lines: these cannot be sent in a name (basic-ftp refuses them too). */
export const FORBIDDEN_CHARS = "\0\r\n";
export const MAX_NAME_BYTES = 255;

export const ftpOptionsSchema = z
  .strictObject({
    host: z.string().min(1),
    /** Default 21, or 990 for implicit FTPS. */
    port: z.number().int().min(1).max(65_535).optional(),
    username: z.string().min(1),
    password: secretString(),
    /** false: plain FTP; true: explicit FTPS (AUTH TLS); "implicit": TLS from the first byte. */
    secure: z.union([z.boolean(), z.literal("implicit")]).default(false),
    /** PEM file of the CA (or the self-signed certificate) to trust, relative to the config file. */
    ca_file: z.string().min(1).optional(),
    /** Folder on the server that is this device's root. */
    root: z.string().min(1).default("/"),
    /** Connections (and so transfers) at once; one more is opened for progress questions. */
    connections: z.number().int().min(1).max(32).default(8),
  })
  .superRefine((options, ctx) => {
    if (options.ca_file !== undefined && options.secure === false) {
      ctx.addIssue({ code: "custom", message: "ca_file needs secure: true or implicit", path: ["ca_file"] });
    }
  });

export type FtpOptions = z.output<typeof ftpOptionsSchema>;

export const ftpCapabilities: Readonly<Capabilities> = Object.freeze({
  read: true,
  write: true,
  list: "flat",
  listSizes: true,
  // MDTM gives seconds; LIST times (minutes or days) are left out of listings, MLSD ones are kept.
  modTimePrecisionMs: 1000,
  setModTime: true,
  hashes: [],
  rangeRead: true,
  resumableWrite: "append",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  maxConcurrency: 8,
  forbiddenChars: FORBIDDEN_CHARS,
  maxNameBytes: MAX_NAME_BYTES,
  caseInsensitive: false,
  watch: false,
  usage: false,
  removable: false,
});

export const ftpKind: StorageKind<FtpOptions> = {
  kind: "ftp",
  optionsSchema: ftpOptionsSchema,
  capabilities: ftpCapabilities,
  cleartext: (options) =>
    options.secure === false ? "plain FTP sends the password in clear (secure: true uses TLS)" : undefined,
};
