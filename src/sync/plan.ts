/**
 * The planner: a pure function from two listings and the sync's rules to the actions that bring the
 * target in line with the source. No I/O, no clock: everything it needs is in its input.
 */
import { dirname, pathKey } from "../core/paths.ts";
import type { HashKind } from "../storage/adapter.ts";

export interface SourceFile {
  path: string;
  size: number;
  modTime?: number;
  hashes?: Partial<Record<HashKind, string>>;
}

export interface TargetEntry {
  path: string;
  type: "file" | "dir";
  size?: number;
  modTime?: number;
  hashes?: Partial<Record<HashKind, string>>;
  /**
   * The source file this copy was sent from (size, time), from Ferry's delivery records, while the
   * target still shows the copy as it was right after. It decides without comparing clocks.
   */
  delivered?: { size: number; modTime?: number };
  /** Whether the sync's filters select this file (only selected files are ever deleted). */
  selected: boolean;
}

/** missing; newer than the copy; sizes differ; digests differ; changed since Ferry sent the copy. */
export type UploadReason = "missing" | "newer" | "size" | "content" | "changed";

export type Action =
  | { type: "upload"; path: string; targetPath: string; size: number; modTime?: number; reason: UploadReason }
  | { type: "delete"; path: string }
  | { type: "rmdir"; path: string }
  /** Left alone on purpose (the file being printed). */
  | { type: "skip"; path: string; reason: string }
  /** Cannot be done on this target (a name it refuses); reported as a failure without trying. */
  | { type: "invalid"; path: string; reason: string };

export interface PlanRules {
  /** Only mirror deletes on the target; move deletes at the source, after delivery (not planned here). */
  mode: "mirror" | "copy" | "move";
  /** A source file newer than the target's copy by more than this is sent again. */
  toleranceMs: number;
  /**
   * Compare contents by this digest where both sides carry it (`compare: checksum`); equal digests
   * mean up to date whatever the times say. Pairs without both digests fall back to size and time.
   */
  hash?: HashKind;
  caseInsensitive: boolean;
  forbiddenChars: string;
  maxNameBytes: number | null;
  /** The only file name endings the target takes (a printer: G-code); absent: any. */
  fileTypes?: readonly string[];
  /** Target path that must be neither replaced nor deleted (the file a printer is printing). */
  protectedPath?: string;
  /** Move mode: what to do with a different file of the same name on the target (default overwrite). */
  onConflict?: "rename" | "overwrite" | "skip";
  /** Send names as spelled (default) or in Unicode NFC. */
  unicode?: "keep" | "nfc";
}

/** The code points beyond ASCII in a name, to tell apart spellings that look the same: "й" → "U+0439". */
function codePoints(name: string): string {
  // Code points, not graphemes, are the point here: a combining mark is shown on its own.
  return Array.from(name)
    .filter((c) => (c.codePointAt(0) ?? 0) > 0x7f)
    .map((c) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`)
    .join(" ");
}

/** Why two source names are one on the target. */
function clashReason(path: string, clash: string, rules: PlanRules): string {
  if (path.normalize("NFC") === clash.normalize("NFC")) {
    return (
      `"${path}" and "${clash}" are one name in two Unicode forms (${codePoints(path)} and ` +
      `${codePoints(clash)}); names are compared in NFC, so only "${clash}" is sent: rename one of them`
    );
  }
  return rules.caseInsensitive
    ? `same name as "${clash}" on a case-insensitive target`
    : `same name as "${clash}"`;
}

/** `a/log1.ulg` → `a/log1 (n).ulg`: the name a moved file takes beside a different one of its name. */
export function conflictName(path: string, n: number): string {
  const slash = path.lastIndexOf("/");
  const name = path.slice(slash + 1);
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  return `${path.slice(0, slash + 1)}${stem} (${n})${ext}`;
}

export interface PlanInput {
  source: Iterable<SourceFile>;
  /** Folders that exist in the source (kept on the target even when empty). */
  sourceDirs?: Iterable<string>;
  target: Iterable<TargetEntry>;
  rules: PlanRules;
}

/** Per set of forbidden characters: matches a path with none of them and no control character. */
const cleanPaths = new Map<string, RegExp>();

/** A quick yes for the usual path: nothing nameProblem could find in it (a no is looked at in full). */
function surelyClean(path: string, rules: PlanRules): boolean {
  let clean = cleanPaths.get(rules.forbiddenChars);
  if (clean === undefined) {
    // Code points, as nameProblem compares them.
    const forbidden = Array.from(
      rules.forbiddenChars,
      (ch) => `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`,
    );
    clean = new RegExp(`^[^\\u0000-\\u001f${forbidden.join("")}]*$`, "u");
    cleanPaths.set(rules.forbiddenChars, clean);
  }
  // A UTF-16 unit is at most 3 bytes in UTF-8: no name in a path this short is too long.
  const short = rules.maxNameBytes === null || path.length * 3 <= rules.maxNameBytes;
  return short && clean.test(path);
}

export function nameProblem(path: string, rules: PlanRules): string | undefined {
  const types = rules.fileTypes;
  const lower = path.toLowerCase();
  if (types !== undefined && !types.some((ending) => lower.endsWith(ending))) {
    return `not accepted by the target, which takes only ${types.join(", ")} files`;
  }
  if (surelyClean(path, rules)) return undefined;
  for (const name of path.split("/")) {
    for (const ch of name) {
      if (rules.forbiddenChars.includes(ch) || ch.charCodeAt(0) < 0x20) {
        return `the target does not allow ${JSON.stringify(ch)} in names`;
      }
    }
    if (rules.maxNameBytes !== null && Buffer.byteLength(name) > rules.maxNameBytes) {
      return `"${name}" is longer than the target's ${rules.maxNameBytes}-byte name limit`;
    }
  }
  return undefined;
}

function needsUpload(file: SourceFile, existing: TargetEntry, rules: PlanRules): UploadReason | undefined {
  if (existing.size !== undefined && existing.size !== file.size) return "size";
  const ours = rules.hash && file.hashes?.[rules.hash];
  const theirs = rules.hash && existing.hashes?.[rules.hash];
  if (ours !== undefined && theirs !== undefined) return ours === theirs ? undefined : "content";
  const sent = existing.delivered;
  if (sent !== undefined)
    return sent.size === file.size && sent.modTime === file.modTime ? undefined : "changed";
  if (
    file.modTime !== undefined &&
    existing.modTime !== undefined &&
    file.modTime - existing.modTime > rules.toleranceMs
  ) {
    return "newer";
  }
  return undefined;
}

/**
 * The first "name (n)" free on the target for a moved file whose name is taken, or undefined when
 * one of them already holds this very file (an earlier run sent it, then could not finish).
 */
function besideConflict(
  file: SourceFile,
  targetFiles: ReadonlyMap<string, TargetEntry>,
  rules: PlanRules,
): string | undefined {
  for (let n = 1; ; n++) {
    const candidate = conflictName(file.path, n);
    const there = targetFiles.get(pathKey(candidate, rules.caseInsensitive));
    if (there === undefined) return candidate;
    if (needsUpload(file, there, rules) === undefined) return undefined;
  }
}

export function plan({ source, sourceDirs = [], target, rules }: PlanInput): Action[] {
  const key = (path: string) => pathKey(path, rules.caseInsensitive);
  const protectedKey = rules.protectedPath === undefined ? undefined : key(rules.protectedPath);

  const targetFiles = new Map<string, TargetEntry>();
  const targetDirs: TargetEntry[] = [];
  for (const entry of target) {
    if (entry.type === "dir") targetDirs.push(entry);
    else targetFiles.set(key(entry.path), entry);
  }

  const uploads: Action[] = [];
  const others: Action[] = [];
  const sourceKeys = new Map<string, string>();
  /** Folders to keep; each one's ancestors are in it too, so a walk up stops at the first known. */
  const keptDirs = new Set<string>();
  const keep = (dir: string) => {
    for (let d = dir; d !== ""; d = dirname(d)) {
      const k = key(d);
      if (keptDirs.has(k)) return;
      keptDirs.add(k);
    }
  };
  for (const dir of sourceDirs) keep(dir);

  for (const file of source) {
    const k = key(file.path);
    const clash = sourceKeys.get(k);
    if (clash !== undefined) {
      others.push({ type: "invalid", path: file.path, reason: clashReason(file.path, clash, rules) });
      continue;
    }
    sourceKeys.set(k, file.path);
    keep(dirname(file.path));
    const problem = nameProblem(file.path, rules);
    if (problem !== undefined) {
      others.push({ type: "invalid", path: file.path, reason: problem });
      continue;
    }
    const existing = targetFiles.get(k);
    let reason = existing === undefined ? "missing" : needsUpload(file, existing, rules);
    if (reason === undefined) continue;
    if (k === protectedKey) {
      others.push({ type: "skip", path: file.path, reason: "being printed" });
      continue;
    }
    let targetPath = existing?.path ?? (rules.unicode === "nfc" ? file.path.normalize("NFC") : file.path);
    if (existing !== undefined && rules.mode === "move" && rules.onConflict !== "overwrite") {
      // A move never destroys a different file of the same name (an archived log).
      if (rules.onConflict === "skip") {
        others.push({
          type: "skip",
          path: file.path,
          reason: "a different file of this name is there (on_conflict: skip)",
        });
        continue;
      }
      const free = besideConflict(file, targetFiles, rules);
      if (free === undefined) continue; // sent before under a "(n)" name
      [targetPath, reason] = [free, "missing"];
    }
    const upload: Action = {
      type: "upload",
      path: file.path,
      targetPath,
      size: file.size,
      reason,
    };
    if (file.modTime !== undefined) upload.modTime = file.modTime;
    uploads.push(upload);
  }

  const deletes: Action[] = [];
  for (const [k, entry] of targetFiles) {
    const excess = rules.mode === "mirror" && entry.selected && !sourceKeys.has(k);
    if (excess && k === protectedKey) {
      others.push({ type: "skip", path: entry.path, reason: "being printed" });
    } else if (excess) {
      deletes.push({ type: "delete", path: entry.path });
      continue;
    }
    keep(dirname(entry.path));
  }

  // Folders the deletions leave empty and the source does not have, deepest first.
  const rmdirs: Action[] =
    rules.mode === "mirror"
      ? targetDirs
          .filter((dir) => !keptDirs.has(key(dir.path)))
          .sort((a, b) => b.path.split("/").length - a.path.split("/").length || a.path.localeCompare(b.path))
          .map((dir) => ({ type: "rmdir", path: dir.path }))
      : [];

  return [...uploads, ...deletes, ...rmdirs, ...others];
}

/**
 * A mirror from a source with no files would delete everything on the target: far more often an
 * unmounted drive than a wish. Returns the reason to refuse, or undefined.
 */
export function emptySourceRefusal(
  actions: readonly Action[],
  sourceFiles: number,
  sourceLabel: string,
): string | undefined {
  const deletes = actions.filter((a) => a.type === "delete").length;
  if (sourceFiles > 0 || deletes === 0) return undefined;
  return `source ${sourceLabel} has no files: refusing to delete ${deletes} file(s); pass --allow-empty-source if that is what you want`;
}

/**
 * Bytes the plan's uploads add to the target beyond what the copies they replace give back: what
 * must be free before the first upload unless the excess files go first.
 */
export function roomNeeded(
  actions: readonly Action[],
  target: Iterable<TargetEntry>,
  caseInsensitive: boolean,
): number {
  const sizes = new Map<string, number>();
  for (const entry of target)
    if (entry.type === "file") sizes.set(pathKey(entry.path, caseInsensitive), entry.size ?? 0);
  let bytes = 0;
  for (const action of actions) {
    if (action.type === "upload")
      bytes += action.size - (sizes.get(pathKey(action.targetPath, caseInsensitive)) ?? 0);
  }
  return bytes;
}
