/**
 * Staging: a file of a slow or removable source is read once into data_dir/staging and fanned out
 * to every target from there. A half-staged file resumes from its last synced byte: after a crash
 * or an unplug, only the missing bytes are read again.
 */
import { mkdir, open, rename, stat, truncate, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FerryError } from "../../core/errors.ts";
import { normalizePath } from "../../core/paths.ts";
import type { StorageAdapter } from "../../storage/adapter.ts";
import type { SourceFilePayload, TransferCheckpoint } from "./payloads.ts";

/** Sync the staged bytes (and checkpoint them) at least this often. */
const SYNC_EVERY = 1024 * 1024;
const PART_SUFFIX = ".ferry-staging";

/** What staging needs of the task it runs in (a task runner's run context fits). */
export interface StagingRun {
  signal: AbortSignal;
  /** What an earlier attempt checkpointed: the bytes already staged and synced. */
  checkpoint: TransferCheckpoint | null;
  /** Bytes staged so far and, once they are synced to disk, the checkpoint to keep. */
  progress(bytes: number, checkpoint?: TransferCheckpoint): void;
}

export interface Staged {
  size: number;
  modTime?: number;
  /** Bytes read from the source in this run. */
  sent: number;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

export async function stageFile(
  source: StorageAdapter,
  root: string,
  file: SourceFilePayload,
  run: StagingRun,
): Promise<Staged> {
  const finalPath = join(root, normalizePath(file.path));
  const partPath = finalPath + PART_SUFFIX;
  const current = await source.stat(file.path, { signal: run.signal });
  const size = current.size ?? file.size;
  const modTime = current.modTime ?? file.modTime;
  const done = await sizeOf(finalPath);
  if (done === size && (await sizeOf(partPath)) === undefined) {
    return { size, ...(modTime === undefined ? {} : { modTime }), sent: 0 };
  }
  await mkdir(dirname(finalPath), { recursive: true });

  // Resume from the checkpoint: bytes past it were never synced and are not trusted.
  const unchanged = size === file.size && modTime === file.modTime;
  let offset = Math.min((await sizeOf(partPath)) ?? 0, unchanged ? (run.checkpoint?.bytes ?? 0) : 0);
  if (offset > 0 && !source.capabilities.rangeRead) offset = 0;
  if ((await sizeOf(partPath)) !== undefined) await truncate(partPath, offset);

  const handle = await open(partPath, offset > 0 ? "r+" : "w");
  let written = offset;
  let synced = offset;
  try {
    if (written < size) {
      const input = await source.read(file.path, { signal: run.signal, ...(offset > 0 ? { offset } : {}) });
      for await (const chunk of input as AsyncIterable<Buffer>) {
        if (written + chunk.length > size) {
          throw new FerryError("PROTOCOL", `${source.name}: ${file.path} grew while it was staged`, {
            subject: file.path,
            retryable: true,
          });
        }
        await handle.write(chunk, 0, chunk.length, written);
        written += chunk.length;
        if (written - synced >= SYNC_EVERY) {
          await handle.sync();
          synced = written;
          run.progress(written, { bytes: synced });
        } else {
          run.progress(written);
        }
      }
    }
    if (written !== size) {
      throw new FerryError("PROTOCOL", `${source.name}: ${file.path} gave ${written} of ${size} bytes`, {
        subject: file.path,
        retryable: true,
      });
    }
    await handle.sync();
    run.progress(written, { bytes: written });
  } finally {
    // What is synced stays for the next attempt.
    await handle.close();
  }
  if (modTime !== undefined) await utimes(partPath, new Date(modTime), new Date(modTime));
  await rename(partPath, finalPath);
  return { size, ...(modTime === undefined ? {} : { modTime }), sent: written - offset };
}
