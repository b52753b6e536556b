/**
 * What each stored task does when a worker runs it. Handlers are idempotent: a task may run again
 * after a crash, so each checks what is already done (the index, the target) before acting.
 */
import { FerryError, isFerryError } from "../../core/errors.ts";
import { pathKey } from "../../core/paths.ts";
import type { StorageAdapter } from "../../storage/adapter.ts";
import { deliveryRecord } from "../../store/deliveries.ts";
import type { Task } from "../../tasks/queue.ts";
import { printerGate, protectedWithin } from "../gate.ts";
import { finishMove } from "../move.ts";
import { sendFile } from "../transfer.ts";
import type { EngineContext } from "./context.ts";
import { enqueueFileTask, enqueueSourceTask } from "./enqueue.ts";
import { stageFile } from "./staging.ts";
import {
  FILE_TASK,
  FINISH_TASK,
  STAGE_TASK,
  type FilePayload,
  type SourceFilePayload,
  type TransferCheckpoint,
} from "./payloads.ts";

export interface RunContext {
  signal: AbortSignal;
  /** Bytes done so far and, when the work can resume from there, the checkpoint to keep. */
  progress(bytes: number, checkpoint?: TransferCheckpoint): void;
  /** Stores a checkpoint now, not with the next heartbeat (before a target holds anything to lose). */
  save(checkpoint: TransferCheckpoint): Promise<void>;
  checkpoint: TransferCheckpoint | null;
}

export interface Outcome {
  /** Bytes this attempt moved (a resumed upload counts only the rest). */
  bytes: number;
  /** Why nothing was done (already delivered, gone from the source, ...). */
  skipped?: string;
}

/** Not now: back to the queue after `afterMs`, no attempt spent (a busy printer, a printed file). */
export class Park extends Error {
  override readonly name = "Park";
  readonly afterMs: number;
  constructor(reason: string, afterMs: number) {
    super(reason);
    this.afterMs = afterMs;
  }
}

export function describeTask(task: Task): { sync: string; target: string; what: string } {
  if (task.kind === FILE_TASK) {
    const p = task.payload as FilePayload;
    const what = p.op === "move" ? `move ${p.from} → ${p.to}` : `${p.op} ${p.path}`;
    return { sync: p.sync, target: p.target, what };
  }
  const p = task.payload as SourceFilePayload;
  return {
    sync: p.sync,
    target: "source",
    what: `${task.kind === STAGE_TASK ? "stage" : "finish"} ${p.path}`,
  };
}

export async function handleTask(task: Task, ctx: EngineContext, run: RunContext): Promise<Outcome> {
  switch (task.kind) {
    case FILE_TASK:
      return fileTask(task.payload as FilePayload, ctx, run);
    case STAGE_TASK:
      return stageTask(task.payload as SourceFilePayload, ctx, run);
    case FINISH_TASK:
      return finishTask(task.payload as SourceFilePayload, ctx, run);
    default:
      throw new FerryError("UNSUPPORTED", `unknown task kind "${task.kind}"`, { retryable: false });
  }
}

async function fileTask(p: FilePayload, ctx: EngineContext, run: RunContext): Promise<Outcome> {
  const sync = ctx.sync(p.sync);
  const endpoint = ctx.target(sync, p.target);
  const target = ctx.adapter(endpoint);
  const opts = { signal: run.signal };
  const printer = endpoint.type === "device" ? ctx.devices.printer(endpoint.device) : undefined;
  if (printer) {
    const gate = await printerGate(printer, sync.when === "idle", run.signal);
    if (gate.blocked?.outcome === "unreachable") {
      throw new FerryError("UNAVAILABLE", `${p.target}: ${gate.blocked.reason}`, { subject: p.target });
    }
    if (gate.blocked) throw new Park(gate.blocked.reason, 30_000);
    const printed = protectedWithin(gate.printing, endpoint);
    const touched = p.op === "move" ? [p.from, p.to] : [p.op === "upload" ? p.targetPath : p.path];
    if (printed !== undefined && touched.some((t) => pathKey(t, true) === pathKey(printed, true))) {
      throw new Park(`${printed} is being printed`, 60_000);
    }
  }

  switch (p.op) {
    case "upload": {
      const source = p.staged ? ctx.staging(sync) : ctx.adapter(sync.source);
      const current = await source.stat(p.path, opts).catch((error: unknown) => {
        if (isFerryError(error, "NOT_FOUND")) return undefined;
        throw error;
      });
      if (!current) return { bytes: 0, skipped: "gone from the source" };
      const size = current.size ?? p.size;
      const modTime = current.modTime ?? p.modTime;
      const records = await ctx.records(sync.name, p.target);
      const key = ctx.recordKey(endpoint, p.targetPath);
      const known = records.get(key);
      if (
        known?.source.size === size &&
        known.source.modTime === modTime &&
        (await shows(target, p.targetPath, known.target, run))
      ) {
        await afterDelivery(p, ctx);
        return { bytes: 0, skipped: "already delivered" };
      }
      let resumedAt = 0;
      const stored = await sendFile(
        source,
        target,
        { path: p.path, targetPath: p.targetPath, size, ...(modTime === undefined ? {} : { modTime }) },
        {
          signal: run.signal,
          onProgress: (bytes) => run.progress(bytes),
          ...(run.checkpoint?.upload ? { resume: run.checkpoint.upload } : {}),
          keep: (kept, now) => {
            const checkpoint = { bytes: kept.bytes, upload: kept.token };
            if (!now) return run.progress(kept.bytes, checkpoint);
            resumedAt = kept.bytes;
            return run.save(checkpoint);
          },
        },
      );
      records.set(key, deliveryRecord({ size, modTime }, stored));
      await records.save();
      await afterDelivery(p, ctx);
      // What this attempt sent: a resumed upload sends only the rest.
      return { bytes: size - resumedAt };
    }
    case "delete": {
      await target.remove(p.path, opts);
      const records = await ctx.records(sync.name, p.target);
      records.delete(ctx.recordKey(endpoint, p.path));
      await records.save();
      return { bytes: 0 };
    }
    case "rmdir":
      try {
        await target.remove(p.path, opts);
      } catch (error) {
        if (isFerryError(error, "NOT_EMPTY")) return { bytes: 0, skipped: "no longer empty" };
        throw error;
      }
      return { bytes: 0 };
    case "move": {
      if (!target.move)
        throw new FerryError("UNSUPPORTED", `${p.target} cannot move files`, { retryable: false });
      await target.move(p.from, p.to, opts);
      // The copy keeps its size and time through a rename, so its record moves with it.
      const records = await ctx.records(sync.name, p.target);
      const known = records.get(ctx.recordKey(endpoint, p.from));
      records.delete(ctx.recordKey(endpoint, p.from));
      if (known) records.set(ctx.recordKey(endpoint, p.to), known);
      await records.save();
      return { bytes: 0 };
    }
  }
}

/** The target still shows the copy as it was right after delivery (write-only targets are trusted). */
async function shows(
  target: StorageAdapter,
  path: string,
  stored: { size?: number; modTime?: number },
  run: RunContext,
): Promise<boolean> {
  if (target.capabilities.list === "none") return true;
  try {
    const entry = await target.stat(path, { signal: run.signal });
    // A target whose listings and writes give no time (S3) recorded none: the size decides.
    return entry.size === stored.size && (stored.modTime === undefined || entry.modTime === stored.modTime);
  } catch (error) {
    if (isFerryError(error, "NOT_FOUND")) return false;
    throw error;
  }
}

/** Move mode and staged copies need a last step once every target has the file. */
async function afterDelivery(p: FilePayload & { op: "upload" }, ctx: EngineContext): Promise<void> {
  const sync = ctx.sync(p.sync);
  if (sync.mode !== "move" && !p.staged) return;
  await enqueueSourceTask(ctx, FINISH_TASK, sync, p);
}

async function finishTask(p: SourceFilePayload, ctx: EngineContext, run: RunContext): Promise<Outcome> {
  const sync = ctx.sync(p.sync);
  const copies = [];
  for (const endpoint of sync.targets) {
    const target = ctx.adapter(endpoint);
    const writeOnly = target.capabilities.list === "none";
    if (writeOnly) {
      const known = (await ctx.records(sync.name, endpoint.label)).get(ctx.recordKey(endpoint, p.path));
      if (known?.source.size !== p.size) return { bytes: 0, skipped: `waiting for ${endpoint.label}` };
    }
    copies.push({ target, path: p.path, trustDelivery: writeOnly });
  }
  if (sync.mode === "move") {
    try {
      await finishMove(ctx.adapter(sync.source), p, copies, run.signal);
    } catch (error) {
      // A copy still missing: the upload that delivers it queues this step again.
      if (isFerryError(error, "PROTOCOL") || isFerryError(error, "BUSY"))
        return { bytes: 0, skipped: (error as Error).message };
      if (isFerryError(error, "NOT_FOUND")) return { bytes: 0, skipped: "already gone from the source" };
      throw error;
    }
    ctx.bus.emit("source.removed", { sync: sync.name, path: p.path });
  }
  if (sync.staging) await ctx.staging(sync).remove(p.path, { signal: run.signal });
  return { bytes: 0 };
}

async function stageTask(p: SourceFilePayload, ctx: EngineContext, run: RunContext): Promise<Outcome> {
  const sync = ctx.sync(p.sync);
  let staged;
  try {
    staged = await stageFile(ctx.adapter(sync.source), ctx.stagingRoot(sync), p, run);
  } catch (error) {
    if (isFerryError(error, "NOT_FOUND")) return { bytes: 0, skipped: "gone from the source" };
    throw error;
  }
  for (const endpoint of sync.targets) {
    await enqueueFileTask(ctx, endpoint, {
      op: "upload",
      sync: sync.name,
      target: endpoint.label,
      path: p.path,
      targetPath: p.path,
      size: staged.size,
      ...(staged.modTime === undefined ? {} : { modTime: staged.modTime }),
      staged: true,
    });
  }
  return { bytes: staged.sent };
}
