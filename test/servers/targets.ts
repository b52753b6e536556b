/**
 * The network targets the end-to-end tests and bench:transfer run against, one shape for all: a
 * real server (from this folder) and how a ferry.yaml device reaches it, what it holds of an
 * unfinished upload (read on the server's side, not through Ferry), and stop/start for outages.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { startCephRgw } from "./ceph-rgw.ts";
import { startSshd } from "./sshd.ts";
import { startVsftpd } from "./vsftpd.ts";
import { startApacheDav } from "./webdav.ts";

export interface NetworkTarget {
  /** The server, for messages: "vsftpd on 127.0.0.1:40123". */
  describe: string;
  /** The device's options in ferry.yaml (type included; secrets inline, these are tests). */
  device: Record<string, unknown>;
  /** Bytes the server holds of unfinished uploads under `folder` (Ferry's temp files, open parts). */
  partialBytes(folder: string): Promise<number>;
  /** Number of finished files under `folder`. */
  files(folder: string): Promise<number>;
  /** sha256 (hex) of a finished file, read on the server's side. */
  sha256(path: string): Promise<string>;
  /** The server's files on this machine, when they are plain files (not S3). */
  dataDir?: string;
  /**
   * How rclone reaches the same place (bench:transfer): `${remote},pass=<obscured password>:${path}`
   * (no `pass` when `password` is undefined).
   */
  rclone: { remote: string; password?: string; path: (folder: string) => string };
  /** Stops the server as a crash would (open transfers break); `start` brings it back, same data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const TEMP = /^\.ferry-.*\.part$/;

/** Bytes of Ferry's temp files and the count of other files, under a folder on disk. */
async function walk(dir: string): Promise<{ partial: number; files: number }> {
  const out = { partial: 0, files: 0 };
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw error;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const inner = await walk(path);
      out.partial += inner.partial;
      out.files += inner.files;
    } else if (TEMP.test(entry.name)) {
      // The server may remove a temp file between the listing and this (a probe, a finished upload).
      const stats = await stat(path).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      });
      out.partial += stats?.size ?? 0;
    } else out.files++;
  }
  return out;
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(stream, hash);
  return hash.digest("hex");
}

function onDisk(root: string): Pick<NetworkTarget, "partialBytes" | "files" | "dataDir" | "sha256"> {
  return {
    dataDir: root,
    partialBytes: async (folder) => (await walk(join(root, folder))).partial,
    files: async (folder) => (await walk(join(root, folder))).files,
    sha256: (path) => sha256Of(createReadStream(join(root, path))),
  };
}

export const networkTargets = {
  async ftp(): Promise<NetworkTarget> {
    const ftp = await startVsftpd();
    return {
      describe: `vsftpd on 127.0.0.1:${ftp.port}`,
      device: { type: "ftp", ...ftp.login },
      rclone: {
        remote: `:ftp,host=${ftp.host},port=${ftp.port},user=${ftp.login.username}`,
        password: ftp.login.password,
        path: (folder) => folder,
      },
      ...onDisk(ftp.uploadRoot),
      stop: () => ftp.stop(),
      start: () => ftp.start(),
      close: () => ftp.close(),
    };
  },
  async sftp(): Promise<NetworkTarget> {
    const sshd = await startSshd();
    return {
      describe: `OpenSSH sshd on 127.0.0.1:${sshd.port}`,
      device: {
        type: "sftp",
        host: sshd.host,
        port: sshd.port,
        username: sshd.user.name,
        password: sshd.user.password,
        host_key: sshd.hostKeyFingerprint,
        root: sshd.uploadRoot,
      },
      rclone: {
        // The server offers SFTP only, no shell: say so, as a user of rclone would (else rclone
        // tries md5sum over a shell for every file).
        remote: `:sftp,host=${sshd.host},port=${sshd.port},user=${sshd.user.name},known_hosts_file=${sshd.knownHostsFile},shell_type=none`,
        password: sshd.user.password,
        path: (folder) => join(sshd.uploadRoot, folder),
      },
      ...onDisk(sshd.uploadRoot),
      stop: () => sshd.stop(),
      start: () => sshd.start(),
      close: () => sshd.close(),
    };
  },
  async webdav(): Promise<NetworkTarget> {
    const dav = await startApacheDav();
    return {
      describe: `Apache mod_dav on 127.0.0.1:${dav.port}`,
      device: { type: "webdav", url: dav.url, username: dav.username, password: dav.password },
      rclone: {
        remote: `:webdav,url='${dav.url}',vendor=other,user=${dav.username}`,
        password: dav.password,
        path: (folder) => folder,
      },
      ...onDisk(dav.dataDir),
      stop: () => dav.stop(),
      start: () => dav.start(),
      close: () => dav.close(),
    };
  },
  async s3(): Promise<NetworkTarget> {
    const rgw = await startCephRgw();
    const bucket = "ferry";
    await rgw.createBucket(bucket);
    const client = new S3Client({
      endpoint: rgw.endpoint,
      region: rgw.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
    return {
      describe: `Ceph RGW on 127.0.0.1:${rgw.port}`,
      device: {
        type: "s3",
        endpoint: rgw.endpoint,
        region: rgw.region,
        bucket,
        access_key_id: rgw.accessKeyId,
        secret_access_key: rgw.secretAccessKey,
        force_path_style: true,
      },
      rclone: {
        remote: `:s3,provider=Ceph,endpoint='${rgw.endpoint}',region=${rgw.region},access_key_id=${rgw.accessKeyId},secret_access_key=${rgw.secretAccessKey},force_path_style=true`,
        path: (folder) => `${bucket}/${folder}`,
      },
      async partialBytes(folder) {
        const uploads = await client.send(
          new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${folder}/` }),
        );
        let bytes = 0;
        for (const upload of uploads.Uploads ?? []) {
          const parts = await client.send(
            new ListPartsCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
          );
          for (const part of parts.Parts ?? []) bytes += part.Size ?? 0;
        }
        return bytes;
      },
      async files(folder) {
        let count = 0;
        let token: string | undefined;
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: `${folder}/`, ContinuationToken: token }),
          );
          // Folder markers ("dir/") are not files.
          count += (page.Contents ?? []).filter((o) => !o.Key?.endsWith("/")).length;
          token = page.NextContinuationToken;
        } while (token);
        return count;
      },
      async sha256(path) {
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: path }));
        return sha256Of(answer.Body as Readable);
      },
      stop: () => rgw.stop(),
      start: () => rgw.start(),
      async close() {
        client.destroy();
        await rgw.close();
      },
    };
  },
} satisfies Record<string, () => Promise<NetworkTarget>>;

export type NetworkTargetName = keyof typeof networkTargets;
