/**
 * Listings for the planner: the source's selected files, the target's entries (with sizes filled in
 * where the listing lacks them and the plan needs them), streamed from the adapters.
 */
import { FerryError, isFerryError } from "../core/errors.ts";
import { pathKey } from "../core/paths.ts";
import type { Entry, HashKind, StorageAdapter } from "../storage/adapter.ts";
import { walk } from "../storage/walk.ts";
import type { DeliveryRecords } from "../store/deliveries.ts";
import type { FileFilter } from "./filters.ts";
import type { SourceFile, TargetEntry } from "./plan.ts";
import { runPool } from "./pool.ts";

/** Digests computed at once per target while comparing by checksum (each reads a whole file). */
const HASH_CONCURRENCY = 4;

// Each entry in one literal, optional fields spread in: its fields then live in the object itself
// (fields added one by one later take a second allocation, 16 more bytes for each of 100,000 files).
const withHashes = (entry: Entry) => (entry.hashes === undefined ? {} : { hashes: { ...entry.hashes } });

export interface SourceScan {
  files: SourceFile[];
  dirs: string[];
}

export async function scanSource(
  adapter: StorageAdapter,
  filter: FileFilter,
  signal?: AbortSignal,
): Promise<SourceScan> {
  const files: SourceFile[] = [];
  const dirs: string[] = [];
  const opts = signal ? { signal } : {};
  for await (const entry of walk(adapter, "", opts)) {
    if (entry.type === "dir") {
      dirs.push(entry.path);
    } else if (filter(entry.path)) {
      const size = entry.size ?? (await adapter.stat(entry.path, opts)).size ?? 0;
      files.push({
        path: entry.path,
        size,
        ...(entry.modTime === undefined ? {} : { modTime: entry.modTime }),
        ...withHashes(entry),
      });
    }
  }
  return { files, dirs };
}

/** The target's entries; a target folder that does not exist yet is empty. */
export async function scanTarget(
  adapter: StorageAdapter,
  filter: FileFilter,
  source: SourceScan,
  signal?: AbortSignal,
): Promise<TargetEntry[]> {
  const opts = signal ? { signal } : {};
  const key = (path: string) => pathKey(path, adapter.capabilities.caseInsensitive);
  /** The source's keys, made at the first file listed without a size (most listings have sizes). */
  let sourceKeys: Set<string> | undefined;
  const entries: TargetEntry[] = [];
  try {
    for await (const entry of walk(adapter, "", opts)) {
      const selected = entry.type === "file" && filter(entry.path);
      let size = entry.size;
      // Listings without sizes: fetch the size of the files the plan will compare.
      if (entry.type === "file" && size === undefined) {
        sourceKeys ??= new Set(source.files.map((file) => key(file.path)));
        if (sourceKeys.has(key(entry.path))) size = (await adapter.stat(entry.path, opts)).size;
      }
      entries.push({
        path: entry.path,
        type: entry.type,
        selected,
        ...(size === undefined ? {} : { size }),
        ...(entry.modTime === undefined ? {} : { modTime: entry.modTime }),
        ...withHashes(entry),
      });
    }
  } catch (error) {
    if (!isFerryError(error, "NOT_FOUND")) throw error;
  }
  return entries;
}

/** The digest kind both adapters can give (`compare: checksum`), or undefined when they share none. */
export function commonHash(a: StorageAdapter, b: StorageAdapter): HashKind | undefined {
  return a.capabilities.hashes.find((kind) => b.capabilities.hashes.includes(kind));
}

/** A source's digests, each computed once however many targets ask for it. */
export type SourceHasher = (path: string, kind: HashKind) => Promise<string>;

export function sourceHasher(adapter: StorageAdapter, signal?: AbortSignal): SourceHasher {
  const known = new Map<string, Promise<string>>();
  return (path, kind) => {
    const key = `${kind}:${path}`;
    let digest = known.get(key);
    if (digest === undefined) {
      if (!adapter.hash) throw new FerryError("UNSUPPORTED", `${adapter.name} offers no ${kind} digests`);
      digest = adapter.hash(path, kind, signal ? { signal } : {});
      known.set(key, digest);
    }
    return digest;
  };
}

/**
 * Adds `kind` digests to the pairs the plan would otherwise judge by time: a source file and the
 * target's file of the same name and size. Fills in the target's entries; returns the source files
 * to plan with (the shared scan is not changed: other targets may compare by another kind).
 */
export async function addHashes(
  files: readonly SourceFile[],
  entries: TargetEntry[],
  target: StorageAdapter,
  kind: HashKind,
  hashSource: SourceHasher,
  signal?: AbortSignal,
): Promise<SourceFile[]> {
  const key = (path: string) => pathKey(path, target.capabilities.caseInsensitive);
  const byKey = new Map<string, TargetEntry>();
  for (const entry of entries) if (entry.type === "file") byKey.set(key(entry.path), entry);
  const hashTarget = target.hash?.bind(target);
  if (!hashTarget) throw new FerryError("UNSUPPORTED", `${target.name} offers no ${kind} digests`);
  const result = files.map((file) => ({ ...file }));
  const pairs = result.flatMap((file) => {
    const entry = byKey.get(key(file.path));
    return entry?.size === file.size ? [{ file, entry }] : [];
  });
  await runPool(pairs, HASH_CONCURRENCY, async ({ file, entry }) => {
    const [ours, theirs] = await Promise.all([
      file.hashes?.[kind] ?? hashSource(file.path, kind),
      entry.hashes?.[kind] ?? hashTarget(entry.path, kind, signal ? { signal } : {}),
    ]);
    file.hashes = { ...file.hashes, [kind]: ours };
    entry.hashes = { ...entry.hashes, [kind]: theirs };
  });
  return result;
}

/**
 * Marks the target's files that are still as Ferry left them with the source they came from, and
 * forgets the records of files that are gone or were changed by someone else since. `listedFrom`
 * (a `records.mark()` taken before the listing was read) keeps what was delivered while it was
 * read: a listing that predates a delivery is no proof that its copy is gone.
 */
export function applyDeliveries(
  entries: readonly TargetEntry[],
  records: DeliveryRecords,
  caseInsensitive: boolean,
  listedFrom: number,
): void {
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry.type !== "file") continue;
    const key = pathKey(entry.path, caseInsensitive);
    const record = records.get(key);
    if (record === undefined) continue;
    if (record.target.size === entry.size && record.target.modTime === entry.modTime) {
      entry.delivered = record.source;
      seen.add(key);
    }
  }
  for (const key of [...records.keys()]) {
    if (!seen.has(key) && !records.setSince(key, listedFrom)) records.delete(key);
  }
}
