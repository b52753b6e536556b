/**
 * Full scans for the durable engine: the same listings, delivery records and pure plan as
 * `ferry sync`, turned into queued tasks. Targets that cannot list (upload forms) are planned from
 * their delivery records alone.
 */
import type { SyncConfig } from "../../config/index.ts";
import { fileFilter } from "../filters.ts";
import { emptySourceRefusal, type Action } from "../plan.ts";
import { planTarget, type ScannedSource } from "../plan-target.ts";
import { scanSource, sourceHasher } from "../scan.ts";
import type { EngineContext } from "./context.ts";
import { enqueueFileTask, enqueueSourceTask } from "./enqueue.ts";
import { FINISH_TASK, STAGE_TASK, type FilePayload } from "./payloads.ts";

export interface ScanResult {
  enqueued: number;
  targets: number;
}

export async function planSync(
  sync: SyncConfig,
  ctx: EngineContext,
  away: ReadonlySet<string>,
  signal: AbortSignal,
): Promise<ScanResult> {
  if (away.has(ctx.deviceOf(sync.source))) return { enqueued: 0, targets: 0 };
  const filter = fileFilter(sync.include, sync.exclude);
  const adapter = ctx.adapter(sync.source);
  const scan = await scanSource(adapter, filter, signal);
  const source: ScannedSource = { adapter, scan, filter, hash: sourceHasher(adapter, signal) };
  let enqueued = 0;
  let targets = 0;
  /** Files every target already holds: in move mode their source copy can go. */
  const everywhere = new Set(scan.files.map((f) => f.path));
  const needsStaging = new Set<string>();

  for (const endpoint of sync.targets) {
    if (away.has(ctx.deviceOf(endpoint))) {
      everywhere.clear();
      continue;
    }
    targets++;
    const records = await ctx.records(sync.name, endpoint.label);
    const { actions, notes } = await planTarget(sync, source, ctx.adapter(endpoint), { records, signal });
    for (const note of notes) ctx.logger.warn({ sync: sync.name, target: endpoint.label }, note);
    const refusal = emptySourceRefusal(actions, scan.files.length, sync.source.label);
    if (refusal !== undefined) {
      ctx.logger.error({ sync: sync.name, target: endpoint.label }, refusal);
      everywhere.clear();
      continue;
    }
    for (const action of actions) {
      if (action.type === "upload" || action.type === "invalid" || action.type === "skip") {
        everywhere.delete(action.path);
      }
      if (action.type === "upload" && sync.staging) {
        needsStaging.add(action.path);
        continue;
      }
      const payload = toPayload(sync.name, endpoint.label, action);
      if (!payload) {
        if (action.type === "invalid")
          ctx.logger.error({ sync: sync.name, target: endpoint.label, path: action.path }, action.reason);
        continue;
      }
      await enqueueFileTask(ctx, endpoint, payload);
      enqueued++;
    }
  }

  for (const file of scan.files) {
    if (needsStaging.has(file.path)) {
      await enqueueSourceTask(ctx, STAGE_TASK, sync, file);
      enqueued++;
    } else if (sync.mode === "move" && everywhere.has(file.path)) {
      // Delivered before a crash or a restart, but the source copy is still here.
      await enqueueSourceTask(ctx, FINISH_TASK, sync, file);
      enqueued++;
    }
  }
  return { enqueued, targets };
}

function toPayload(sync: string, target: string, action: Action): FilePayload | undefined {
  switch (action.type) {
    case "upload":
      return {
        op: "upload",
        sync,
        target,
        path: action.path,
        targetPath: action.targetPath,
        size: action.size,
        ...(action.modTime === undefined ? {} : { modTime: action.modTime }),
      };
    case "delete":
    case "rmdir":
      return { op: action.type, sync, target, path: action.path };
    default:
      return undefined;
  }
}
