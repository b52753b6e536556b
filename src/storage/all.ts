/**
 * Every storage adapter a device in ferry.yaml may have, by kind. Adding an adapter means adding it
 * here. The memory adapter is not one: it is for tests, and a device whose files die with the
 * process has no place in a config.
 *
 * A network adapter's implementation, and the protocol library under it (ssh2, the AWS SDK,
 * basic-ftp, undici, node-mavlink), is loaded when its first device is opened: a run pays only for
 * the kinds its config uses. Config validation needs only each kind's options and capabilities.
 */
import { createRequire } from "node:module";
import { defineStorageAdapter, type StorageAdapterDefinition, type StorageKind } from "./adapter.ts";
import { ftpKind } from "./ftp/options.ts";
import { httpPostKind } from "./http-post/options.ts";
import { localAdapter } from "./local/local.ts";
import { mavlinkFtpKind } from "./mavlink-ftp/options.ts";
import { removableAdapter } from "./removable/removable.ts";
import { s3Kind } from "./s3/options.ts";
import { sftpKind } from "./sftp/options.ts";
import { webdavKind } from "./webdav/options.ts";

// require() of an ES module loads it synchronously, so opening a device stays synchronous.
const load = createRequire(import.meta.url);

/** `kind`, whose implementation is loaded on its first `create`. */
function onFirstUse<Options>(
  kind: StorageKind<Options>,
  implementation: () => StorageAdapterDefinition<Options>,
): StorageAdapterDefinition<Options> {
  return defineStorageAdapter({
    ...kind,
    create: (options, context) => implementation().create(options, context),
  });
}

export const storageAdapters = [
  localAdapter,
  removableAdapter,
  onFirstUse(
    httpPostKind,
    () => (load("./http-post/http-post.ts") as typeof import("./http-post/http-post.ts")).httpPostAdapter,
  ),
  onFirstUse(
    webdavKind,
    () => (load("./webdav/webdav.ts") as typeof import("./webdav/webdav.ts")).webdavAdapter,
  ),
  onFirstUse(sftpKind, () => (load("./sftp/sftp.ts") as typeof import("./sftp/sftp.ts")).sftpAdapter),
  onFirstUse(ftpKind, () => (load("./ftp/ftp.ts") as typeof import("./ftp/ftp.ts")).ftpAdapter),
  onFirstUse(s3Kind, () => (load("./s3/s3.ts") as typeof import("./s3/s3.ts")).s3Adapter),
  onFirstUse(
    mavlinkFtpKind,
    () =>
      (load("./mavlink-ftp/mavlink-ftp.ts") as typeof import("./mavlink-ftp/mavlink-ftp.ts"))
        .mavlinkFtpAdapter,
  ),
] as const;
