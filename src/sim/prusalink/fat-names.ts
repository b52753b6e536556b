/**
 * FAT naming rules as a PrusaLink printer applies them to its USB stick: which long names are
 * allowed, how names compare (NFC, case-insensitive), and the 8.3 short names the MK4 reports as
 * `name` in listings ("SPICE_~1.GCO").
 */

/** Characters FAT forbids in a long name (control characters are forbidden too). */
export const FAT_FORBIDDEN = '"*:<>?\\|';

/** Longest long name in UTF-8 bytes that the simulator accepts (FAT's limit is 255 UTF-16 units). */
export const MAX_NAME_BYTES = 255;

/** Why `name` cannot be stored on FAT, or undefined when it can. */
export function invalidNameReason(name: string): string | undefined {
  if (name === "" || name === "." || name === "..") return `"${name}" is not a file name`;
  for (const ch of name) {
    if (ch === "/" || FAT_FORBIDDEN.includes(ch) || ch.charCodeAt(0) < 0x20 || ch === "\x7f") {
      return `"${name}" contains ${JSON.stringify(ch)}, which FAT does not allow`;
    }
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `"${name}" is longer than ${MAX_NAME_BYTES} bytes`;
  return undefined;
}

/** The key two names are compared by: NFC and case-folded, as FAT compares long names. */
export function nameKey(name: string): string {
  return name.normalize("NFC").toLowerCase();
}

/** Characters allowed in a short name besides A-Z and 0-9. */
const SHORT_SPECIALS = "$%'-_@~`!(){}^#&";

function shortChar(ch: string): string {
  const upper = ch.toUpperCase();
  if (/^[A-Z0-9]$/.test(upper) || SHORT_SPECIALS.includes(ch)) return upper;
  return "_";
}

/** Whether a long name is already a plain 8.3 name, which FAT stores without a generated alias. */
function isPlainShort(name: string): boolean {
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(name);
  if (!m) return false;
  const all = (m[1] ?? "") + (m[2] ?? "");
  if (!Array.from(all).every((ch) => /^[A-Za-z0-9]$/.test(ch) || SHORT_SPECIALS.includes(ch))) return false;
  // Mixed case within a part needs a long-name entry, so Windows and FatFs generate an alias.
  return [m[1] ?? "", m[2] ?? ""].every((part) => part === part.toUpperCase() || part === part.toLowerCase());
}

/**
 * The 8.3 alias for `longName`, unique among `taken` (upper-case short names already in the folder),
 * the way Windows and FatFs make them: leading dots and spaces dropped, the rest upper-cased with
 * unsupported characters as "_", the first six characters of the base + "~N" + the first three of
 * the extension.
 */
export function makeShortName(longName: string, taken: ReadonlySet<string>): string {
  if (isPlainShort(longName)) {
    const plain = longName.toUpperCase();
    if (!taken.has(plain)) return plain;
  }
  const stripped = longName.replace(/^[. ]+/, "").replaceAll(" ", "");
  const dot = stripped.lastIndexOf(".");
  const rawBase = dot > 0 ? stripped.slice(0, dot) : stripped;
  const rawExt = dot > 0 ? stripped.slice(dot + 1) : "";
  const base = Array.from(rawBase.replaceAll(".", ""), shortChar).join("") || "_";
  const ext = Array.from(rawExt, shortChar).join("").slice(0, 3);
  for (let n = 1; ; n++) {
    const suffix = `~${n}`;
    const candidate = base.slice(0, 8 - suffix.length) + suffix + (ext === "" ? "" : `.${ext}`);
    if (!taken.has(candidate)) return candidate;
  }
}

export { isPrintFile } from "../../core/gcode.ts";
