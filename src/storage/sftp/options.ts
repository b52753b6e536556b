/** The options of an `sftp` device in ferry.yaml, and what the adapter can do. */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import type { Capabilities, StorageKind } from "../adapter.ts";
import { normalizeFingerprint } from "./host-keys.ts";
import { FORBIDDEN_CHARS, MAX_NAME_BYTES } from "./names.ts";

const fingerprint = z.string().refine((value) => normalizeFingerprint(value) !== undefined, {
  message: 'a host key fingerprint as ssh-keygen -lf prints it: "SHA256:" and 43 base64 characters',
});

export const sftpOptionsSchema = z
  .strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(22),
    username: z.string().min(1),
    password: secretString().optional(),
    /** OpenSSH/PEM private key, relative to the config file's folder. */
    private_key_file: z.string().min(1).optional(),
    passphrase: secretString().optional(),
    /** Pinned host key fingerprint(s), `SHA256:…`. */
    host_key: z.union([fingerprint, z.array(fingerprint).min(1)]).optional(),
    /** known_hosts file (default ~/.ssh/known_hosts), relative to the config file's folder. */
    known_hosts: z.string().min(1).optional(),
    /** Folder on the server that is this device's root; relative ones are under the login folder. */
    root: z.string().min(1).optional(),
  })
  .superRefine((options, ctx) => {
    if (options.password === undefined && options.private_key_file === undefined) {
      ctx.addIssue({
        code: "custom",
        message: "give password or private_key_file (or both)",
        path: ["password"],
      });
    }
    if (options.passphrase !== undefined && options.private_key_file === undefined) {
      ctx.addIssue({ code: "custom", message: "passphrase needs private_key_file", path: ["passphrase"] });
    }
    if (options.host_key !== undefined && options.known_hosts !== undefined) {
      ctx.addIssue({ code: "custom", message: "give host_key or known_hosts, not both", path: ["host_key"] });
    }
  });

export type SftpOptions = z.output<typeof sftpOptionsSchema>;

/** Channels on the one connection: maxConcurrency transfers plus one for listings and stats. */
const MAX_CONCURRENCY = 8;
export const CHANNELS = MAX_CONCURRENCY + 1;

export const sftpCapabilities: Readonly<Capabilities> = Object.freeze({
  read: true,
  write: true,
  list: "flat",
  listSizes: true,
  // SFTP v3 carries times in whole seconds.
  modTimePrecisionMs: 1000,
  setModTime: true,
  // OpenSSH has no check-file extension: no hashes without reading the file.
  hashes: [],
  rangeRead: true,
  resumableWrite: "offset",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  maxConcurrency: MAX_CONCURRENCY,
  forbiddenChars: FORBIDDEN_CHARS,
  maxNameBytes: MAX_NAME_BYTES,
  caseInsensitive: false,
  watch: false,
  // statvfs@openssh.com; servers without it answer UNSUPPORTED.
  usage: true,
  removable: false,
});

export const sftpKind: StorageKind<SftpOptions> = {
  kind: "sftp",
  optionsSchema: sftpOptionsSchema,
  capabilities: sftpCapabilities,
};
