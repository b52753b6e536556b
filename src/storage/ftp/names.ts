/** Ferry paths as FTP paths: checks, the temp names of uploads, and FTP's timestamps. */
import { normalizePath } from "../../core/paths.ts";
import { ftpFailure } from "./errors.ts";
import { FORBIDDEN_CHARS, MAX_NAME_BYTES } from "./options.ts";
import { TEMP_NAME, tempName } from "../temp-names.ts";

export { TEMP_NAME, tempName };

/** Whether a name has a single Unicode normalization form (then no NFC lookup is needed). */
// eslint-disable-next-line no-control-regex
export const isAscii = (name: string): boolean => /^[\x00-\x7f]*$/.test(name);

/** Normalizes a Ferry path and refuses names the FTP adapter cannot send or store. */
export function checkPath(device: string, input: string): string {
  const path = normalizePath(input);
  for (const name of path === "" ? [] : path.split("/")) {
    const context = { device, path, action: "stat" as const };
    for (const char of FORBIDDEN_CHARS) {
      if (name.includes(char)) {
        throw ftpFailure(
          "NAME_INVALID",
          context,
          `"${name}" contains ${JSON.stringify(char)}, which FTP cannot send`,
        );
      }
    }
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
      throw ftpFailure("NAME_INVALID", context, `"${name}" is longer than ${MAX_NAME_BYTES} bytes`);
    }
    if (TEMP_NAME.test(name)) {
      throw ftpFailure("NAME_INVALID", context, `"${name}" is a name reserved for Ferry's temp files`);
    }
  }
  return path;
}

/** The configured root as an absolute FTP path without a trailing slash ("/" stays "/"). */
export function normalizeRoot(root: string): string {
  const inner = normalizePath(root);
  return inner === "" ? "/" : `/${inner}`;
}

/** The FTP path of a Ferry path under `root`. */
export function remotePath(root: string, path: string): string {
  if (path === "") return root;
  return root === "/" ? `/${path}` : `${root}/${path}`;
}

/** The folder of an FTP path ("/a/b" → "/a", "/a" → "/"). */
export function remoteParent(path: string): string {
  const at = path.lastIndexOf("/");
  return at <= 0 ? "/" : path.slice(0, at);
}

/** "YYYYMMDDHHMMSS" (UTC) of a time in ms, as MFMT and vsftpd's MDTM take it. */
export function ftpTimestamp(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return (
    String(d.getUTCFullYear()).padStart(4, "0") +
    two(d.getUTCMonth() + 1) +
    two(d.getUTCDate()) +
    two(d.getUTCHours()) +
    two(d.getUTCMinutes()) +
    two(d.getUTCSeconds())
  );
}

/** The time of an MDTM reply ("213 20240102030405[.678]"), or undefined. */
export function parseMdtm(message: string): number | undefined {
  const m = /^213 (\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?/.exec(message.trim());
  if (!m) return undefined;
  const n = (i: number) => Number(m[i]);
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, "0"));
  return Date.UTC(n(1), n(2) - 1, n(3), n(4), n(5), n(6), ms);
}
