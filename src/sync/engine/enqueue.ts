/**
 * The one way sync tasks get into the queue: keyed for dedupe, on the queue of the device they
 * touch, ordered by priority, and only for files the sync selects — whatever planned them (a scan,
 * the watcher, a handler), a file the sync's filters leave out never becomes a task.
 */
import type { Endpoint, SyncConfig } from "../../config/index.ts";
import { deviceOf } from "../../devices/devices.ts";
import type { EngineContext } from "./context.ts";
import { sourceQueue } from "../../devices/queues.ts";
import {
  FILE_TASK,
  syncScope,
  fileKey,
  sourceKey,
  taskPath,
  type FilePayload,
  type SourceFilePayload,
} from "./payloads.ts";

/**
 * Order of a target's work (higher first): new files go in before excess files go out, so a
 * mirror never stands with neither; folders go last, once they are empty. When the new files need
 * the room the excess takes (`roomFirst`), the excess goes first.
 */
export function filePriority(payload: FilePayload, roomFirst = false): number {
  switch (payload.op) {
    case "upload":
    case "move":
      return 2;
    case "delete":
      return roomFirst ? 3 : 1;
    case "rmdir":
      return 0;
  }
}

/** One change on one target; a newer change to the same file replaces one not yet started. */
export async function enqueueFileTask(
  ctx: EngineContext,
  target: Endpoint,
  payload: FilePayload,
  options: { roomFirst?: boolean } = {},
): Promise<boolean> {
  const filter = ctx.filter(ctx.sync(payload.sync));
  const selected =
    payload.op === "move"
      ? filter(payload.from) && filter(payload.to)
      : payload.op === "rmdir" || filter(payload.path);
  if (!selected) {
    ctx.logger.debug({ sync: payload.sync, path: taskPath(payload) }, "not selected by the sync's filters");
    return false;
  }
  const path = taskPath(payload);
  // Deletions and folder removals of a target share one queue, so a folder goes after its files.
  const on = payload.op === "delete" || payload.op === "rmdir" ? "" : path;
  await ctx.queue.enqueue<FilePayload>(
    {
      kind: FILE_TASK,
      key: fileKey(payload.sync, payload.target, path),
      queue: ctx.queueFor(target, on),
      scope: syncScope(payload.sync),
      payload,
      priority: filePriority(payload, options.roomFirst),
      ...(ctx.maxAttempts === undefined ? {} : { maxAttempts: ctx.maxAttempts }),
    },
    "replace",
  );
  return true;
}

/** Work on a source file (staging, the last step of a move), serialized on the source's device. */
export async function enqueueSourceTask(
  ctx: EngineContext,
  kind: string,
  sync: SyncConfig,
  file: { path: string; size: number; modTime?: number | undefined },
): Promise<void> {
  await ctx.queue.enqueue<SourceFilePayload>(
    {
      kind,
      key: sourceKey(kind, sync.name, file.path),
      queue: sourceQueue(deviceOf(sync.source)),
      scope: syncScope(sync.name),
      payload: {
        sync: sync.name,
        path: file.path,
        size: file.size,
        ...(file.modTime === undefined ? {} : { modTime: file.modTime }),
      },
      ...(ctx.maxAttempts === undefined ? {} : { maxAttempts: ctx.maxAttempts }),
    },
    "replace",
  );
}
