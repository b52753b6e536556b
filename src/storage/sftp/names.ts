/**
 * Names and paths on an SFTP server: Ferry paths (relative, "/"-separated) under the absolute root
 * folder, Ferry's temp names, and the names refused before anything is sent.
 */
import { posix } from "node:path";
import { normalizePath } from "../../core/paths.ts";
import { sftpFailure } from "./errors.ts";
import { TEMP_NAME, tempName } from "../temp-names.ts";

export { TEMP_NAME, tempName };

/** Ferry's temp files: hidden from listings, and refused as user names. */
/** SFTP sends names as length-prefixed strings, but OpenSSH's server dies on an embedded NUL. */
export const FORBIDDEN_CHARS = "\0";
/** What the filesystems behind SFTP servers allow (ext4, XFS, ZFS, btrfs); the server decides. */
export const MAX_NAME_BYTES = 255;

// eslint-disable-next-line no-control-regex
export const isAscii = (text: string): boolean => /^[\x00-\x7f]*$/.test(text);

/** The normalized Ferry path, or NAME_INVALID for names this adapter never sends. */
export function checkPath(device: string, input: string): string {
  const path = normalizePath(input);
  for (const name of path === "" ? [] : path.split("/")) {
    if (name.includes("\0")) throw sftpFailure("NAME_INVALID", device, path, "names may not contain NUL");
    if (TEMP_NAME.test(name)) {
      throw sftpFailure("NAME_INVALID", device, path, "names like this are reserved for Ferry's temp files");
    }
  }
  return path;
}

/** The server's absolute path of a Ferry path under `root` (absolute, no trailing slash but "/"). */
export function remotePath(root: string, path: string): string {
  if (path === "") return root;
  return root === "/" ? `/${path}` : `${root}/${path}`;
}

/** An absolute root folder: `root` as configured, relative ones under the login folder. */
export function absoluteRoot(home: string, root: string | undefined): string {
  const joined = root === undefined ? home : posix.resolve(home, root);
  const normalized = posix.normalize(joined);
  return normalized.length > 1 ? normalized.replace(/\/+$/, "") : normalized;
}
