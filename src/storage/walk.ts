/**
 * Every file and folder under a folder of an adapter, streamed: folders are listed one at a time
 * (or the whole tree in one call where the adapter lists recursively), and only the paths of
 * folders still to visit are held in memory, never the tree.
 */
import { FerryError, isFerryError, throwIfAborted } from "../core/errors.ts";
import type { Entry, OpOptions, StorageAdapter } from "./adapter.ts";

/**
 * Yields the entries under `dir` (not `dir` itself), paths relative to the adapter's root. With a
 * flat listing a folder comes before its contents. NOT_FOUND when `dir` is missing; a subfolder
 * removed while the walk runs is skipped.
 */
export async function* walk(
  adapter: StorageAdapter,
  dir: string,
  options: OpOptions = {},
): AsyncIterable<Entry> {
  const { signal } = options;
  const opts = signal ? { signal } : {};
  throwIfAborted(signal);
  switch (adapter.capabilities.list) {
    case "none":
      throw new FerryError("UNSUPPORTED", `${adapter.name}: cannot list folders`, { subject: dir });
    case "recursive":
      yield* adapter.list(dir, { ...opts, recursive: true });
      return;
    case "flat":
      break;
  }
  // Depth first: the folders found in one listing are visited, in order, before the next of their parent's siblings.
  const pending: string[][] = [[dir]];
  let first = true;
  for (let level = pending.at(-1); level; level = pending.at(-1)) {
    const folder = level.shift();
    if (folder === undefined) {
      pending.pop();
      continue;
    }
    const children: string[] = [];
    try {
      for await (const entry of adapter.list(folder, opts)) {
        if (entry.type === "dir") children.push(entry.path);
        yield entry;
      }
    } catch (error) {
      if (first || !isFerryError(error, "NOT_FOUND")) throw error;
    }
    first = false;
    throwIfAborted(signal);
    if (children.length > 0) pending.push(children);
  }
}
