/**
 * Listings for the planner: the source's selected files, the target's entries (with sizes filled in
 * where the listing lacks them and the plan needs them), streamed from the adapters.
 */
import { isFerryError } from "../core/errors.ts";
import { pathKey } from "../core/paths.ts";
import type { StorageAdapter } from "../storage/adapter.ts";
import { walk } from "../storage/walk.ts";
import type { FileFilter } from "./filters.ts";
import type { SourceFile, TargetEntry } from "./plan.ts";

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
  const sourceKeys = new Set(source.files.map((file) => key(file.path)));
  const entries: TargetEntry[] = [];
  try {
    for await (const entry of walk(adapter, "", opts)) {
      const selected = entry.type === "file" && filter(entry.path);
      let size = entry.size;
      // Listings without sizes: fetch the size of the files the plan will compare.
      if (entry.type === "file" && size === undefined && sourceKeys.has(key(entry.path))) {
        size = (await adapter.stat(entry.path, opts)).size;
      }
      entries.push({
        path: entry.path,
        type: entry.type,
        selected,
        ...(size === undefined ? {} : { size }),
        ...(entry.modTime === undefined ? {} : { modTime: entry.modTime }),
      });
    }
  } catch (error) {
    if (!isFerryError(error, "NOT_FOUND")) throw error;
  }
  return entries;
}
