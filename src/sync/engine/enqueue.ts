/** The one way tasks get into the queue: keyed for dedupe, on the queue of the device they touch. */
import type { Endpoint, SyncConfig } from "../../config/index.ts";
import type { EngineContext } from "./context.ts";
import {
  FILE_TASK,
  fileKey,
  sourceKey,
  sourceQueue,
  taskPath,
  type FilePayload,
  type SourceFilePayload,
} from "./payloads.ts";

/** One change on one target; a newer change to the same file replaces one not yet started. */
export async function enqueueFileTask(
  ctx: EngineContext,
  target: Endpoint,
  payload: FilePayload,
): Promise<void> {
  const path = taskPath(payload);
  await ctx.queue.enqueue<FilePayload>(
    {
      kind: FILE_TASK,
      key: fileKey(payload.sync, payload.target, path),
      queue: ctx.queueFor(target, path),
      payload,
    },
    "replace",
  );
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
      queue: sourceQueue(ctx.deviceOf(sync.source)),
      payload: {
        sync: sync.name,
        path: file.path,
        size: file.size,
        ...(file.modTime === undefined ? {} : { modTime: file.modTime }),
      },
    },
    "replace",
  );
}
