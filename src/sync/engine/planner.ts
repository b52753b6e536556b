/**
 * A planning pass of one sync, for `ferry serve` (every trigger) and `ferry sync` (once): scan the
 * source once, plan every target from its listing and delivery records, and queue one task per
 * change. Targets that cannot list (upload forms) are planned from their delivery records alone.
 */
import type { Endpoint, SyncConfig } from "../../config/index.ts";
import { toFerryError } from "../../core/errors.ts";
import { formatBytes } from "../../core/units.ts";
import { deviceOf } from "../../devices/devices.ts";
import type { StorageAdapter } from "../../storage/adapter.ts";
import type { TargetOutcome } from "../events.ts";
import { farmFolderWithin, printerGate, protectedWithin } from "../gate.ts";
import { emptySourceRefusal, roomNeeded, type Action, type TargetEntry } from "../plan.ts";
import { planTarget, type ScannedSource } from "../plan-target.ts";
import { scanSource, sourceHasher } from "../scan.ts";
import type { EngineContext } from "./context.ts";
import { enqueueFileTask, enqueueSourceTask } from "./enqueue.ts";
import { FINISH_TASK, STAGE_TASK, type FilePayload } from "./payloads.ts";

export interface PlanOptions {
  /** What asked for this pass ("start", "watch", "ferry sync", ...). */
  reason: string;
  signal: AbortSignal;
  /** Devices that are away: their targets are not planned now. */
  away?: ReadonlySet<string>;
  /**
   * `ferry sync` looks at each printer before planning it: one that is not idle (with `when:
   * idle`) or does not answer is left out now, and the file it prints is left alone.
   * `ferry serve` plans every target and lets each task wait at the printer instead.
   */
  gatePrinters?: { includeBusy: boolean };
  /** Plan and report, queue nothing. */
  dryRun?: boolean;
  /** Let a mirror from a source with no files delete everything on its targets. */
  allowEmptySource?: boolean;
  /** Only these targets (default: all of the sync's). */
  targets?: readonly Endpoint[];
}

export interface PlannedTarget {
  endpoint: Endpoint;
  actions: Action[];
  notes: string[];
  /** Set when the target was left out of this pass, and why. */
  outcome?: { outcome: TargetOutcome; reason: string };
  /** The printer's state word, when it was looked at. */
  state?: string;
}

export interface SyncPlan {
  targets: PlannedTarget[];
  enqueued: number;
  /** Files in the source (a mirror's empty-source rule counts them). */
  files: number;
}

export async function planSync(
  sync: SyncConfig,
  ctx: EngineContext,
  options: PlanOptions,
): Promise<SyncPlan> {
  const { signal, away } = options;
  const endpoints = options.targets ?? sync.targets;
  if (away?.has(deviceOf(sync.source))) return { targets: [], enqueued: 0, files: 0 };
  const filter = ctx.filter(sync);
  const adapter = ctx.adapter(sync.source);
  const scan = await scanSource(adapter, filter, signal);
  const source: ScannedSource = { adapter, scan, filter, hash: sourceHasher(adapter, signal) };
  /** Files every target already holds: in move mode their source copy can go. */
  const everywhere = new Set(scan.files.map((f) => f.path));
  const needsStaging = new Set<string>();
  const targets = await Promise.all(
    endpoints.map((endpoint) => planOne(sync, endpoint, source, ctx, options)),
  );
  let enqueued = 0;
  for (const planned of targets) {
    if (planned.outcome) {
      // A target not planned now holds nothing new: no source file goes on this pass.
      everywhere.clear();
      continue;
    }
    const ref = { sync: sync.name, target: planned.endpoint.label };
    const bytes = planned.actions.reduce((sum, a) => sum + (a.type === "upload" ? a.size : 0), 0);
    for (const note of planned.notes) ctx.bus.emit("sync.note", { ...ref, note });
    ctx.bus.emit("sync.planned", {
      ...ref,
      actions: planned.actions,
      bytes,
      dryRun: options.dryRun === true,
      reason: options.reason,
    });
    const roomFirst = planned.notes.some((n) => n.startsWith(ROOM_NOTE));
    for (const action of planned.actions) {
      if (action.type === "upload" || action.type === "invalid" || action.type === "skip") {
        everywhere.delete(action.path);
      }
      if (options.dryRun) continue;
      if (action.type === "upload" && sync.staging) {
        needsStaging.add(action.path);
        continue;
      }
      const payload = toPayload(sync.name, planned.endpoint.label, action);
      if (payload && (await enqueueFileTask(ctx, planned.endpoint, payload, { roomFirst }))) enqueued++;
    }
  }
  if (options.dryRun) return { targets, enqueued, files: scan.files.length };
  for (const file of scan.files) {
    if (needsStaging.has(file.path)) {
      await enqueueSourceTask(ctx, STAGE_TASK, sync, file);
      enqueued++;
    } else if (sync.mode === "move" && everywhere.has(file.path)) {
      // Delivered before (a crash, a restart, a target that took it earlier), but the source copy is still here.
      await enqueueSourceTask(ctx, FINISH_TASK, sync, file);
      enqueued++;
    }
  }
  return { targets, enqueued, files: scan.files.length };
}

const ROOM_NOTE = "deleting excess files first";

async function planOne(
  sync: SyncConfig,
  endpoint: Endpoint,
  source: ScannedSource,
  ctx: EngineContext,
  options: PlanOptions,
): Promise<PlannedTarget> {
  const planned: PlannedTarget = { endpoint, actions: [], notes: [] };
  const { signal } = options;
  if (options.away?.has(deviceOf(endpoint))) {
    planned.outcome = { outcome: "unreachable", reason: `${deviceOf(endpoint)} is away` };
    return planned;
  }
  try {
    let protectedPath: string | undefined;
    const printer = endpoint.type === "device" ? ctx.devices.printer(endpoint.device) : undefined;
    if (printer && options.gatePrinters) {
      const gated = sync.when === "idle" && !options.gatePrinters.includeBusy;
      const gate = await printerGate(printer, gated, signal);
      if (gate.state !== undefined) planned.state = gate.state;
      if (gate.blocked) {
        planned.outcome = gate.blocked;
        return planned;
      }
      protectedPath = protectedWithin(gate.printing, endpoint);
    }
    const target = ctx.adapter(endpoint);
    const records = await ctx.records(sync.name, endpoint.label);
    const farmPrinter = endpoint.type === "device" && ctx.devices.get(endpoint.device).printer?.farm === true;
    const reservedFolder = farmPrinter ? farmFolderWithin(endpoint) : undefined;
    const { actions, entries, notes } = await planTarget(sync, source, target, {
      records,
      protectedPath,
      reservedFolder,
      signal,
    });
    planned.actions = actions;
    planned.notes = notes;
    const refusal = options.allowEmptySource
      ? undefined
      : emptySourceRefusal(actions, source.scan.files.length, sync.source.label);
    if (refusal !== undefined) {
      planned.outcome = { outcome: "failed", reason: refusal };
      return planned;
    }
    const room = actions.some((a) => a.type === "delete")
      ? await roomToMake(target, actions, entries, signal)
      : undefined;
    if (room) notes.push(`${ROOM_NOTE}: ${formatBytes(room.needed)} to add, ${formatBytes(room.free)} free`);
  } catch (error) {
    const failure = toFerryError(error);
    planned.outcome = {
      outcome: failure.code === "UNAVAILABLE" || failure.code === "AUTH" ? "unreachable" : "failed",
      reason: failure.message,
    };
  }
  return planned;
}

/** How much room the uploads need and the target has, when the target cannot fit them now. */
async function roomToMake(
  target: StorageAdapter,
  actions: readonly Action[],
  entries: readonly TargetEntry[],
  signal: AbortSignal,
): Promise<{ needed: number; free: number } | undefined> {
  if (!target.usage) return undefined;
  // Not knowing the free space is no reason to fail: then the safe order stands.
  const usage = await target.usage({ signal }).catch(() => undefined);
  const free = usage?.freeBytes;
  const needed = roomNeeded(actions, entries, target.capabilities.caseInsensitive);
  return free !== undefined && needed > free ? { needed, free } : undefined;
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
