/** The tasks the durable engine stores: what each carries, how it is keyed and serialized. */
import type { UploadToken } from "../../storage/adapter.ts";

/** One change on one target: send, delete, remove a folder, or move on the target. */
export const FILE_TASK = "sync.file";
/** After every target has a file: delete the source (move mode) and the staged copy. */
export const FINISH_TASK = "sync.finish";
/** Read a file of a slow or removable source once into data_dir/staging. */
export const STAGE_TASK = "sync.stage";

interface OnTarget {
  sync: string;
  /** The target endpoint's label ("mk4-a", "mk4-a:models", "./outbox"). */
  target: string;
}

export type FilePayload =
  | (OnTarget & {
      op: "upload";
      path: string;
      targetPath: string;
      size: number;
      modTime?: number;
      /** Read from data_dir/staging instead of the source. */
      staged?: boolean;
    })
  | (OnTarget & { op: "delete" | "rmdir"; path: string })
  | (OnTarget & { op: "move"; from: string; to: string });

export interface SourceFilePayload {
  sync: string;
  path: string;
  size: number;
  modTime?: number;
}

/** Saved with heartbeats; a transfer resumes from `bytes` where the adapters allow it. */
export interface TransferCheckpoint {
  bytes: number;
  /** A resumable upload's token (see StorageAdapter.openUpload). */
  upload?: UploadToken;
  /**
   * Move mode: the name the file was given on the target (its own, or "name (n)" beside a different
   * file), kept before the first byte: after a crash the copy there is known to be Ferry's.
   */
  placed?: string;
}

/** The scope of a sync's tasks (Task.scope): lists filter by it, a paused sync's tasks wait. */
export function syncScope(sync: string): string {
  return `sync:${sync}`;
}

/**
 * One queued change per file and target: a newer change replaces an older one not yet started.
 * Keys are JSON arrays of their parts: unambiguous whatever a name holds, and text PostgreSQL
 * takes (it refuses NUL, which the first keys used as a separator; migration 0011 converts them).
 */
export function fileKey(sync: string, target: string, path: string): string {
  return JSON.stringify(["file", sync, target, path.normalize("NFC")]);
}

export function sourceKey(kind: string, sync: string, path: string): string {
  return JSON.stringify([kind, sync, path.normalize("NFC")]);
}

/** The path a file task is keyed and serialized by: the one it changes (a move's destination). */
export function taskPath(payload: FilePayload): string {
  return payload.op === "move" ? payload.to : payload.path;
}
