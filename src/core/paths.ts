/**
 * Ferry paths are POSIX-style, relative to an adapter's root, without leading or trailing slashes;
 * "" is the root. Names are compared in NFC so that a file written from macOS (NFD) and one read
 * back from Linux (NFC) are the same file.
 */
import { FerryError } from "./errors.ts";

export function normalizePath(input: string): string {
  const parts: string[] = [];
  for (const part of input.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      throw new FerryError("NAME_INVALID", `path escapes its root: ${input}`, { subject: input });
    }
    parts.push(part);
  }
  return parts.join("/");
}

export function joinPath(...parts: string[]): string {
  return normalizePath(parts.filter((p) => p !== "").join("/"));
}

export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Every ancestor folder of a path, outermost first ("a/b/c" → ["a", "a/b"]). */
export function ancestors(path: string): string[] {
  const parts = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

/** The key two paths are compared by: NFC, and case-folded where the side is case-insensitive. */
export function pathKey(path: string, caseInsensitive = false): string {
  const nfc = path.normalize("NFC");
  return caseInsensitive ? nfc.toLowerCase() : nfc;
}

/** `prefix` is the root ("") or an ancestor-or-self of `path`. */
export function isWithin(path: string, prefix: string): boolean {
  return prefix === "" || path === prefix || path.startsWith(prefix + "/");
}

/** `path` relative to `prefix`, which must contain it. */
export function relativeTo(path: string, prefix: string): string {
  if (prefix === "") return path;
  if (path === prefix) return "";
  return path.slice(prefix.length + 1);
}
