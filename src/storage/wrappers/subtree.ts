/**
 * Presents a folder of an adapter as a root of its own, so the engine works with paths relative
 * to a sync's source or target folder and can never touch anything outside it.
 */
import { joinPath, relativeTo } from "../../core/paths.ts";
import type { Entry, StorageAdapter } from "../adapter.ts";

export function subtree(inner: StorageAdapter, prefix: string): StorageAdapter {
  if (prefix === "") return inner;
  const outer = (entry: Entry): Entry => ({ ...entry, path: relativeTo(entry.path, prefix) });
  const at = (path: string) => joinPath(prefix, path);
  const adapter: StorageAdapter = {
    kind: inner.kind,
    name: `${inner.name}:${prefix}`,
    capabilities: inner.capabilities,
    async *list(dir, options) {
      for await (const entry of inner.list(at(dir), options)) yield outer(entry);
    },
    stat: async (path, options) => outer(await inner.stat(at(path), options)),
    read: (path, options) => inner.read(at(path), options),
    write: async (path, source, options) => outer(await inner.write(at(path), source, options)),
    remove: (path, options) => inner.remove(at(path), options),
    mkdir: (path, options) => inner.mkdir(at(path), options),
    // The inner adapter belongs to its device; whoever opened the device closes it.
    close: () => Promise.resolve(),
  };
  if (inner.move) {
    const move = inner.move.bind(inner);
    adapter.move = (from, to, options) => move(at(from), at(to), options);
  }
  if (inner.setModTime) {
    const setModTime = inner.setModTime.bind(inner);
    adapter.setModTime = (path, time, options) => setModTime(at(path), time, options);
  }
  if (inner.hash) {
    const hash = inner.hash.bind(inner);
    adapter.hash = (path, kind, options) => hash(at(path), kind, options);
  }
  if (inner.usage) adapter.usage = inner.usage.bind(inner);
  if (inner.readWithEntry) {
    const readWithEntry = inner.readWithEntry.bind(inner);
    adapter.readWithEntry = async (path, options) => {
      const { entry, body } = await readWithEntry(at(path), options);
      return { entry: outer(entry), body };
    };
  }
  if (inner.openUpload) {
    const openUpload = inner.openUpload.bind(inner);
    adapter.openUpload = async (path, options) => {
      const upload = await openUpload(at(path), options);
      return {
        offset: upload.offset,
        token: upload.token,
        finish: async (rest, finishOptions) => outer(await upload.finish(rest, finishOptions)),
        abort: (abortOptions) => upload.abort(abortOptions),
      };
    };
  }
  return adapter;
}
