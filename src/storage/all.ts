/** Every storage adapter Ferry knows, by kind. Adding an adapter means adding it here. */
import { ftpAdapter } from "./ftp/ftp.ts";
import { httpPostAdapter } from "./http-post/http-post.ts";
import { localAdapter } from "./local/local.ts";
import { memoryAdapter } from "./memory/memory.ts";
import { removableAdapter } from "./removable/removable.ts";
import { s3Adapter } from "./s3/s3.ts";
import { sftpAdapter } from "./sftp/sftp.ts";
import { webdavAdapter } from "./webdav/webdav.ts";

export const storageAdapters = [
  localAdapter,
  memoryAdapter,
  removableAdapter,
  httpPostAdapter,
  webdavAdapter,
  sftpAdapter,
  ftpAdapter,
  s3Adapter,
] as const;
