/**
 * Every storage adapter a device in ferry.yaml may have, by kind. Adding an adapter means adding it
 * here. The memory adapter is not one: it is for tests, and a device whose files die with the
 * process has no place in a config.
 */
import { ftpAdapter } from "./ftp/ftp.ts";
import { httpPostAdapter } from "./http-post/http-post.ts";
import { localAdapter } from "./local/local.ts";
import { mavlinkFtpAdapter } from "./mavlink-ftp/mavlink-ftp.ts";
import { removableAdapter } from "./removable/removable.ts";
import { s3Adapter } from "./s3/s3.ts";
import { sftpAdapter } from "./sftp/sftp.ts";
import { webdavAdapter } from "./webdav/webdav.ts";

export const storageAdapters = [
  localAdapter,
  removableAdapter,
  httpPostAdapter,
  webdavAdapter,
  sftpAdapter,
  ftpAdapter,
  s3Adapter,
  mavlinkFtpAdapter,
] as const;
