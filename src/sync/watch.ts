/**
 * Live changes of a local folder, coalesced into batches: a file written in many steps is one
 * change once it stops growing, a rename is one move (matched by inode), and a file created and
 * deleted within a batch is no change at all. Paths are relative, `/`-separated and NFC, as the
 * rest of the engine uses them. Nothing here is durable: the engine's rescans catch what a
 * watcher misses (events dropped by the kernel, changes while Ferry was stopped).
 */
import type { Stats } from "node:fs";
import { relative, sep } from "node:path";
import { watch } from "chokidar";

export type WatchChange =
  | { type: "upsert"; path: string }
  | { type: "delete"; path: string }
  | { type: "move"; path: string; from: string };

export interface WatchOptions {
  /** Only files it selects are reported. */
  filter: (path: string) => boolean;
  signal: AbortSignal;
  onError?: (error: unknown) => void;
  /** A batch is handed over once no event came for this long (default 50 ms)... */
  settleMs?: number;
  /** ...or once its first event is this old, however busy the folder (default 100 ms). */
  maxBatchMs?: number;
  /** A file counts as written once its size held this long (default 100 ms). */
  stableMs?: number;
}

export async function* watchFolder(root: string, options: WatchOptions): AsyncGenerator<WatchChange[]> {
  const { filter, signal } = options;
  const settleMs = options.settleMs ?? 50;
  const maxBatchMs = options.maxBatchMs ?? 100;
  const rel = (abs: string) => relative(root, abs).split(sep).join("/").normalize("NFC");
  /** Identity of each file seen, so a rename can be told from a delete and a create. */
  const inodes = new Map<string, FileIdentity>();
  let pending: WatchEvent[] = [];
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Runs from a batch's first event: a steady stream of writes must not hold the batch back. */
  let oldest: NodeJS.Timeout | undefined;
  /** `due`: the batch has settled (no event for `settleMs`); set by a timer, hence an object. */
  const batch = { due: false };
  let ready = false;

  const watcher = watch(root, {
    ignoreInitial: false,
    // A link is not followed: the source adapter does not read through one (ADR 15).
    followSymlinks: false,
    alwaysStat: true,
    awaitWriteFinish: { stabilityThreshold: options.stableMs ?? 100, pollInterval: 25 },
    // Ferry's own temp files (local writes, staging) are not changes.
    ignored: (path: string) => /(^|[/\\])\.ferry-[^/\\]*$/.test(path) || path.endsWith(".ferry-staging"),
  });
  const push = (type: "add" | "change" | "unlink", abs: string, stats?: Stats) => {
    const path = rel(abs);
    if (path === "" || path.startsWith("..")) return;
    if (!ready) {
      // The initial listing only teaches inodes; the engine's start scan plans those files.
      if (stats) inodes.set(path, identity(stats));
      return;
    }
    // A file the initial listing already knew, unchanged: chokidar reports some of those only once
    // they are stable, after "ready" (awaitWriteFinish); the start scan plans them.
    const known = inodes.get(path);
    if (type === "add" && stats && known && sameFile(known, identity(stats))) return;
    pending.push({ type, path, ...(stats ? { id: identity(stats) } : {}) });
    const flush = () => {
      clearTimeout(timer);
      clearTimeout(oldest);
      oldest = undefined;
      batch.due = true;
      wake?.();
    };
    clearTimeout(timer);
    timer = setTimeout(flush, settleMs);
    oldest ??= setTimeout(flush, maxBatchMs);
  };
  watcher.on("add", (path, stats) => push("add", path, stats));
  watcher.on("change", (path, stats) => push("change", path, stats));
  watcher.on("unlink", (path) => push("unlink", path));
  watcher.on("error", (error) => options.onError?.(error));
  const readyNow = new Promise<void>((resolve) => watcher.once("ready", resolve));
  const stop = () => {
    clearTimeout(timer);
    clearTimeout(oldest);
    wake?.();
  };
  signal.addEventListener("abort", stop, { once: true });
  try {
    await readyNow;
    ready = true;
    while (!signal.aborted) {
      if (!batch.due) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (!batch.due) continue;
      batch.due = false;
      const events = pending;
      pending = [];
      const changes = coalesce(events, inodes).filter(
        (c) => filter(c.path) || (c.type === "move" && filter(c.from)),
      );
      if (changes.length > 0) yield changes;
    }
  } finally {
    signal.removeEventListener("abort", stop);
    clearTimeout(timer);
    clearTimeout(oldest);
    await watcher.close();
  }
}

/** What stays the same through a rename: the inode, the size and the modification time. */
export interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

export interface WatchEvent {
  type: "add" | "change" | "unlink";
  path: string;
  id?: FileIdentity;
}

function identity(stats: Stats): FileIdentity {
  return { ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * One change per path, in order. An unlink and an add of the same file make a move: same inode,
 * size and time — a new file that only reuses a deleted file's inode is a new file.
 */
export function coalesce(events: readonly WatchEvent[], inodes: Map<string, FileIdentity>): WatchChange[] {
  const last = new Map<string, "upsert" | "delete">();
  const removed = new Map<number, { path: string; id: FileIdentity }>();
  const moves = new Map<string, string>();
  for (const event of events) {
    if (event.type === "unlink") {
      const id = inodes.get(event.path);
      inodes.delete(event.path);
      if (id !== undefined) removed.set(id.ino, { path: event.path, id });
      last.set(event.path, "delete");
      continue;
    }
    if (event.id !== undefined) {
      const gone = event.type === "add" ? removed.get(event.id.ino) : undefined;
      const same =
        gone !== undefined && gone.id.size === event.id.size && gone.id.mtimeMs === event.id.mtimeMs;
      if (gone !== undefined && same && gone.path !== event.path) {
        removed.delete(event.id.ino);
        moves.set(event.path, gone.path);
        last.delete(gone.path);
      }
      inodes.set(event.path, event.id);
    }
    last.set(event.path, "upsert");
  }
  const changes: WatchChange[] = [];
  for (const [path, type] of last) {
    const from = moves.get(path);
    if (type === "upsert" && from !== undefined) changes.push({ type: "move", path, from });
    else changes.push({ type, path });
  }
  return changes;
}
