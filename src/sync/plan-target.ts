/**
 * Plans one target of a sync from live listings: the target's entries, what Ferry delivered there
 * before, digests where the sync compares by checksum, then the pure plan. The one-shot run and the
 * durable engine both plan this way.
 */
import type { SyncConfig } from "../config/index.ts";
import { pathKey } from "../core/paths.ts";
import type { StorageAdapter } from "../storage/adapter.ts";
import type { DeliveryRecords } from "../store/deliveries.ts";
import type { FileFilter } from "./filters.ts";
import { plan, type Action, type TargetEntry } from "./plan.ts";
import {
  addHashes,
  applyDeliveries,
  commonHash,
  scanTarget,
  type SourceHasher,
  type SourceScan,
} from "./scan.ts";

/** What every target of one planning pass shares: the source, scanned once, and its digests. */
export interface ScannedSource {
  adapter: StorageAdapter;
  scan: SourceScan;
  filter: FileFilter;
  hash: SourceHasher;
}

export interface TargetPlan {
  actions: Action[];
  entries: TargetEntry[];
  notes: string[];
}

export async function planTarget(
  sync: SyncConfig,
  source: ScannedSource,
  target: StorageAdapter,
  options: {
    records?: DeliveryRecords | undefined;
    protectedPath?: string | undefined;
    /** A folder that is not the sync's (a farm printer's job folder): never listed, sent to or cleaned. */
    reservedFolder?: string | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<TargetPlan> {
  const caps = target.capabilities;
  const notes: string[] = [];
  const listedFrom = options.records?.mark() ?? 0;
  const reserved = options.reservedFolder;
  const reservedKey = reserved === undefined ? undefined : pathKey(reserved + "/", true);
  const outside = (path: string) =>
    reservedKey === undefined || !pathKey(path + "/", true).startsWith(reservedKey);
  /** The items outside the reserved folder; the list itself when there is none (no copy). */
  const keepOutside = <T>(items: T[], path: (item: T) => string): T[] =>
    reservedKey === undefined ? items : items.filter((item) => outside(path(item)));
  const entries = keepOutside(
    caps.list === "none" ? [] : await scanTarget(target, source.filter, source.scan, options.signal),
    (entry) => entry.path,
  );
  if (options.records) {
    // A loop, not push(...): a spread of 100,000+ records overflows the call stack.
    if (caps.list === "none")
      for (const entry of fromRecords(options.records, source.filter)) entries.push(entry);
    else applyDeliveries(entries, options.records, caps.caseInsensitive, listedFrom);
  }
  let files = keepOutside(source.scan.files, (file) => file.path);
  if (files.length < source.scan.files.length)
    notes.push(
      `${reserved ?? ""}/ on this printer is the print farm's: the source's files in it are not sent`,
    );
  const hash = sync.compare === "checksum" ? commonHash(source.adapter, target) : undefined;
  if (hash) {
    files = await addHashes(files, entries, target, hash, source.hash, options.signal);
  } else if (sync.compare === "checksum") {
    notes.push("no checksum in common with the source: compared by size and time");
  }
  const actions = plan({
    source: files,
    sourceDirs: keepOutside(source.scan.dirs, (dir) => dir),
    target: entries,
    rules: {
      ...(hash ? { hash } : {}),
      mode: sync.mode,
      onConflict: sync.onConflict,
      unicode: sync.unicode,
      toleranceMs: sync.modTimeToleranceS * 1000,
      caseInsensitive: caps.caseInsensitive,
      forbiddenChars: caps.forbiddenChars,
      maxNameBytes: caps.maxNameBytes,
      ...(caps.fileTypes === undefined ? {} : { fileTypes: caps.fileTypes }),
      ...(options.protectedPath === undefined ? {} : { protectedPath: options.protectedPath }),
    },
  });
  return { actions, entries, notes };
}

/** What a target that cannot list holds, as far as Ferry delivered it (keys stand for paths). */
function fromRecords(records: DeliveryRecords, filter: FileFilter): TargetEntry[] {
  const entries: TargetEntry[] = [];
  for (const key of records.keys()) {
    const record = records.get(key);
    if (!record) continue;
    entries.push({
      path: key,
      type: "file",
      ...(record.target.size === undefined ? {} : { size: record.target.size }),
      ...(record.target.modTime === undefined ? {} : { modTime: record.target.modTime }),
      delivered: record.source,
      selected: filter(key),
    });
  }
  return entries;
}
