/** Jobs' files from a local folder (by the file's id), for farm tests that bypass the file library. */
import type { JobFiles } from "../../src/farm/upload.ts";
import type { StorageAdapter } from "../../src/storage/adapter.ts";

export function folderJobFiles(folder: StorageAdapter): JobFiles {
  return {
    open: async (f) => ({
      storage: folder,
      path: f.id ?? f.name,
      size: (await folder.stat(f.id ?? f.name)).size ?? 0,
    }),
  };
}
