/**
 * The one apply path of sync work, for `ferry serve` and `ferry sync` alike: what each kind of
 * task does when the runner runs it — gate, send, verify, record, finish a move. Handlers are
 * idempotent: a task may run again after a crash, so each checks what is already done (the
 * delivery records, the target) before acting.
 */
import type { SyncConfig } from "../../config/index.ts";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { formatBytes } from "../../core/units.ts";
import { pathKey } from "../../core/paths.ts";
import type { Readable } from "node:stream";
import type { Entry, StorageAdapter } from "../../storage/adapter.ts";
import { deliveryRecord } from "../../store/deliveries.ts";
import type { TaskLabel, TaskRef } from "../../tasks/events.ts";
import type { Task } from "../../tasks/queue.ts";
import { Park, type Outcome, type RunContext, type TaskRunner } from "../../tasks/runner.ts";
import { printerGate, protectedWithin } from "../gate.ts";
import { CopyMissing, finishMove } from "../move.ts";
import { conflictName } from "../plan.ts";
import { sendFile } from "../../storage/transfer.ts";
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

type Run = RunContext<TransferCheckpoint>;

/** A printer that is not idle is asked again after this. */
const BUSY_PRINTER_MS = 30_000;
/** The file being printed is asked for again after this. */
const PRINTED_FILE_MS = 60_000;

/** Registers the sync handlers on a runner. */
export function registerSyncHandlers(
  runner: TaskRunner,
  ctx: EngineContext,
  options: { includeBusy?: boolean } = {},
): void {
  runner.register<FilePayload, TransferCheckpoint>(FILE_TASK, {
    describe: describeFile,
    run: (task, run) => fileTask(task.payload, ctx, run, options.includeBusy === true),
    abandon: (task) => abandonUpload(task, ctx),
  });
  runner.register<SourceFilePayload, TransferCheckpoint>(STAGE_TASK, {
    describe: describeStage,
    run: (task, run) => stageTask(task.payload, ctx, run),
  });
  runner.register<SourceFilePayload, TransferCheckpoint>(FINISH_TASK, {
    describe: describeFinish,
    run: (task, run) => finishTask(task.payload, ctx, run),
  });
}

/** What a stored sync task is about, without a runner (`ferry status`, `ferry tasks`). */
export function describeSyncTask(task: Task): TaskRef {
  const label =
    task.kind === FILE_TASK
      ? describeFile(task.payload as FilePayload)
      : task.kind === STAGE_TASK
        ? describeStage(task.payload as SourceFilePayload)
        : task.kind === FINISH_TASK
          ? describeFinish(task.payload as SourceFilePayload)
          : { what: `${task.kind} task` };
  return { id: task.id, kind: task.kind, ...label };
}

const describeStage = (p: SourceFilePayload): TaskLabel => ({
  what: `stage ${p.path}`,
  sync: p.sync,
  target: "source",
  path: p.path,
  size: p.size,
});

const describeFinish = (p: SourceFilePayload): TaskLabel => ({
  what: `finish ${p.path}`,
  sync: p.sync,
  target: "source",
  path: p.path,
});

function describeFile(p: FilePayload): TaskLabel {
  const on = { sync: p.sync, target: p.target };
  switch (p.op) {
    case "upload":
      return { ...on, what: `send ${p.path} (${formatBytes(p.size)})`, path: p.path, size: p.size };
    case "delete":
      return { ...on, what: `delete ${p.path}`, path: p.path };
    case "rmdir":
      return { ...on, what: `remove folder ${p.path}`, path: p.path };
    case "move":
      return { ...on, what: `move ${p.from} → ${p.to}`, path: p.to };
  }
}

/** A resumable upload given up for good leaves nothing on the target (no orphaned parts, no temp file). */
async function abandonUpload(task: Task<FilePayload, TransferCheckpoint>, ctx: EngineContext): Promise<void> {
  const p = task.payload;
  const token = task.checkpoint?.upload;
  if (p.op !== "upload" || !token) return;
  const target = ctx.adapter(ctx.target(ctx.sync(p.sync), p.target));
  if (!target.openUpload) return;
  const upload = await target.openUpload(p.targetPath, {
    size: p.size,
    ...(p.modTime === undefined ? {} : { modTime: p.modTime }),
    resume: token,
  });
  await upload.abort();
}

async function fileTask(
  p: FilePayload,
  ctx: EngineContext,
  run: Run,
  includeBusy: boolean,
): Promise<Outcome> {
  const sync = ctx.sync(p.sync);
  const endpoint = ctx.target(sync, p.target);
  const target = ctx.adapter(endpoint);
  const opts = { signal: run.signal };
  const printer = endpoint.type === "device" ? ctx.devices.printer(endpoint.device) : undefined;
  if (printer) {
    const gate = await printerGate(printer, sync.when === "idle" && !includeBusy, run.signal);
    if (gate.blocked?.outcome === "unreachable") {
      throw new FerryError("UNAVAILABLE", `${p.target}: ${gate.blocked.reason}`, { subject: p.target });
    }
    if (gate.blocked) throw new Park(gate.blocked.reason, BUSY_PRINTER_MS, { wholeDevice: true });
    const printed = protectedWithin(gate.printing, endpoint);
    const touched = p.op === "move" ? [p.from, p.to] : [p.op === "upload" ? p.targetPath : p.path];
    if (printed !== undefined && touched.some((t) => pathKey(t, true) === pathKey(printed, true))) {
      throw new Park(`${printed} is being printed`, PRINTED_FILE_MS);
    }
  }

  switch (p.op) {
    case "upload": {
      const source = p.staged ? ctx.staging(sync) : ctx.adapter(sync.source);
      const opened = await lookAtSource(source, p.path, sync.mode !== "move", opts);
      if (!opened) return { bytes: 0, skipped: "gone from the source" };
      try {
        const current = opened.entry;
        const size = current.size ?? p.size;
        const modTime = current.modTime ?? p.modTime;
        const records = await ctx.records(sync.name, p.target);
        let targetPath = p.targetPath;
        if (sync.mode === "move") {
          // A file still being written is not taken; a different file of its name is never destroyed.
          await settled(ctx.adapter(sync.source), p, sync.settleS, ctx, run);
          const placed = run.checkpoint?.placed;
          if (placed === undefined) {
            const place = await placeMoved(target, p.targetPath, { size, modTime }, sync.onConflict, (path) =>
              records.get(ctx.recordKey(endpoint, path)),
            );
            if ("skip" in place) return { bytes: 0, skipped: place.skip };
            targetPath = place.path;
            // Kept before the first byte: what lands there after a crash is Ferry's, not a conflict.
            await run.save({ bytes: 0, placed: targetPath });
          } else {
            targetPath = placed;
          }
        }
        const key = ctx.recordKey(endpoint, targetPath);
        const known = records.get(key);
        if (
          known?.source.size === size &&
          known.source.modTime === modTime &&
          (await shows(target, targetPath, known.target, run))
        ) {
          await afterDelivery(p, ctx);
          return { bytes: 0, skipped: "already delivered" };
        }
        let resumedAt = 0;
        const stored = await sendFile(
          source,
          target,
          { path: p.path, targetPath, size, ...(modTime === undefined ? {} : { modTime }) },
          {
            signal: run.signal,
            ...(opened.body === undefined ? {} : { opened: opened.body }),
            onProgress: (bytes) => run.progress(bytes),
            ...(run.checkpoint?.upload ? { resume: run.checkpoint.upload } : {}),
            keep: (kept, now) => {
              const checkpoint = {
                bytes: kept.bytes,
                upload: kept.token,
                ...(sync.mode === "move" ? { placed: targetPath } : {}),
              };
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
      } finally {
        // Sent, or not to be sent: nothing more is read from it either way.
        opened.body?.destroy();
      }
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

/**
 * The source file's entry, and where the source can and `open` allows, the file itself opened from
 * its first byte: one look at the file, not a stat and then a read. Move mode looks with a stat
 * alone (it waits for the file to settle before reading it). Undefined when the file is gone.
 */
async function lookAtSource(
  source: StorageAdapter,
  path: string,
  open: boolean,
  opts: { signal: AbortSignal },
): Promise<{ entry: Entry; body?: Readable } | undefined> {
  const look =
    open && source.readWithEntry
      ? source.readWithEntry(path, opts)
      : source.stat(path, opts).then((entry) => ({ entry }));
  return await look.catch((error: unknown) => {
    if (isFerryError(error, "NOT_FOUND")) return undefined;
    throw error;
  });
}

/**
 * Where a moved file goes on a target: its own name when free, else by `onConflict` — beside the
 * different file as "name (n).ext" (rename), over it (overwrite), or nowhere (skip). A name that
 * holds Ferry's own copy of this very file (its record says so) is where it goes on.
 */
async function placeMoved(
  target: StorageAdapter,
  path: string,
  file: { size: number; modTime?: number | undefined },
  onConflict: SyncConfig["onConflict"],
  record: (path: string) => { source: { size: number; modTime?: number } } | undefined,
): Promise<{ path: string } | { skip: string }> {
  if (target.capabilities.list === "none" || onConflict === "overwrite") return { path };
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? path : conflictName(path, n);
    const there = await target.stat(candidate).catch((error: unknown) => {
      if (isFerryError(error, "NOT_FOUND")) return undefined;
      throw error;
    });
    if (there === undefined) return { path: candidate };
    const sent = record(candidate)?.source;
    // Ferry's own copy of this file (its record says so, or it has the file's very size and time,
    // as a copy that landed just before a crash has): it goes on there.
    if (sent?.size === file.size && sent.modTime === file.modTime) return { path: candidate };
    if (there.size === file.size && file.modTime !== undefined && there.modTime === file.modTime)
      return { path: candidate };
    if (n === 0 && onConflict === "skip")
      return { skip: `a different file of this name is on ${target.name} (on_conflict: skip)` };
  }
}

/** The target still shows the copy as it was right after delivery (write-only targets are trusted). */
async function shows(
  target: StorageAdapter,
  path: string,
  stored: { size?: number; modTime?: number },
  run: Run,
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

async function finishTask(p: SourceFilePayload, ctx: EngineContext, run: Run): Promise<Outcome> {
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
    const source = ctx.adapter(sync.source);
    await settled(source, p, sync.settleS, ctx, run);
    try {
      await finishMove(source, p, copies, run.signal);
    } catch (error) {
      if (isFerryError(error, "NOT_FOUND")) return { bytes: 0, skipped: "already gone from the source" };
      // A copy still missing: the upload that delivers it queues this step again.
      if (error instanceof CopyMissing) return { bytes: 0, skipped: error.message };
      if (isFerryError(error, "BUSY")) {
        // The file changed after it was sent: it goes again, and this step follows its delivery.
        await sendAgain(sync, p.path, ctx, run);
        ctx.bus.emit("sync.source.kept", { sync: sync.name, path: p.path, reason: error.message });
        return { bytes: 0, skipped: error.message };
      }
      if (isFerryError(error, "PROTOCOL")) {
        ctx.bus.emit("sync.source.kept", { sync: sync.name, path: p.path, reason: error.message });
        return { bytes: 0, skipped: error.message };
      }
      throw error;
    }
    ctx.bus.emit("sync.source.removed", { sync: sync.name, path: p.path });
  }
  if (sync.staging) await ctx.staging(sync).remove(p.path, { signal: run.signal });
  return { bytes: 0 };
}

/**
 * A file still being written never leaves the source: it must have been unchanged for the sync's
 * settle time. Until then the step waits (a one-shot run leaves it for the next run).
 */
async function settled(
  source: StorageAdapter,
  p: SourceFilePayload,
  settleS: number,
  ctx: EngineContext,
  run: Run,
): Promise<void> {
  if (settleS <= 0) return;
  const current = await source.stat(p.path, { signal: run.signal }).catch((error: unknown) => {
    if (isFerryError(error, "NOT_FOUND")) return undefined;
    throw error;
  });
  if (current?.modTime === undefined) return;
  const quietMs = ctx.clock() - current.modTime;
  if (quietMs < settleS * 1000) {
    throw new Park(
      `${p.path} was written ${Math.max(0, Math.round(quietMs / 1000))} s ago; it leaves the source once unchanged for ${settleS} s`,
      settleS * 1000 - quietMs,
    );
  }
}

/** The source file changed after it was sent: queue it again for every target (or for staging). */
async function sendAgain(sync: SyncConfig, path: string, ctx: EngineContext, run: Run): Promise<void> {
  const current = await ctx.adapter(sync.source).stat(path, { signal: run.signal });
  if (current.type !== "file" || current.size === undefined) return;
  const file = {
    path,
    size: current.size,
    ...(current.modTime === undefined ? {} : { modTime: current.modTime }),
  };
  if (sync.staging) {
    await enqueueSourceTask(ctx, STAGE_TASK, sync, file);
    return;
  }
  for (const endpoint of sync.targets) {
    await enqueueFileTask(ctx, endpoint, {
      op: "upload",
      sync: sync.name,
      target: endpoint.label,
      targetPath: path,
      ...file,
    });
  }
}

async function stageTask(p: SourceFilePayload, ctx: EngineContext, run: Run): Promise<Outcome> {
  const sync = ctx.sync(p.sync);
  // A file still being written is not taken.
  if (sync.mode === "move") await settled(ctx.adapter(sync.source), p, sync.settleS, ctx, run);
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
