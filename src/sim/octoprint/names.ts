/**
 * OctoPrint's name rules for its `local` storage (octoprint.util.files.sanitize_filename with
 * pathvalidate, as in OctoPrint 1.11 and 2.0 by default): what an uploaded or created name becomes
 * on disk, and which names are print files. The name the client gave is kept as the entry's
 * `display` when it differs.
 */

/** Stripped by OctoPrint itself before pathvalidate runs (its `_STRIPPED_FILE_NAME_CHARS`). */
const OCTOPRINT_STRIPPED = ";|&?$*<>";
/** pathvalidate's invalid characters for the "universal" platform (besides control characters). */
const PATHVALIDATE_INVALID = ':*?"<>|';
/** Windows and macOS reserved names: pathvalidate appends "_" to them. */
const RESERVED = new Set([
  "CON",
  "PRN",
  "AUX",
  "CLOCK$",
  "NUL",
  ...["COM", "LPT"].flatMap((prefix) => Array.from({ length: 9 }, (_, i) => `${prefix}${i + 1}`)),
  ":",
]);
const MAX_NAME = 255;

/** Thrown for a name OctoPrint refuses outright (it contains "/" or "\"). */
export class InvalidNameError extends Error {
  override readonly name = "InvalidNameError";
}

function isControl(char: string): boolean {
  const code = char.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f;
}

/**
 * The name OctoPrint stores for `name`: OctoPrint's own stripped characters and ASCII control
 * characters go, then pathvalidate removes `:*?"<>|`, cuts to 255 characters, drops trailing
 * spaces and dots when the result would end in one, suffixes a reserved name with "_", and a
 * leading dots go (they would hide the file).
 */
export function sanitizeName(name: string): string {
  if (name.includes("/") || name.includes("\\")) throw new InvalidNameError("name must not contain / or \\");
  let result = Array.from(name)
    .filter((c) => !OCTOPRINT_STRIPPED.includes(c) && !PATHVALIDATE_INVALID.includes(c) && !isControl(c))
    .join("");
  result = Array.from(result).slice(0, MAX_NAME).join("");
  if (result.endsWith(" ") || result.endsWith(".")) result = result.replace(/[ .]+$/, "");
  const dot = result.indexOf(".");
  const stem = dot < 0 ? result : result.slice(0, dot);
  if (RESERVED.has(stem.toUpperCase())) result = `${stem}_${result.slice(stem.length)}`;
  return result.replace(/^\.+/, "");
}

/** Stock OctoPrint's machine code extensions (a plugin such as OctoPrint-BGCode adds more). */
export const STOCK_EXTENSIONS: readonly string[] = ["gcode", "gco", "g", "gc~"];

export function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
}
