/**
 * A one-shot run of a sync: scan the source once, then bring every target in line with it, all
 * targets at once, each at the concurrency its capabilities allow. One target failing never stops
 * the others; the result is one report per target.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Endpoint, SyncConfig } from "../config/index.ts";
import { EventBus } from "../core/events.ts";
import { toFerryError } from "../core/errors.ts";
import { formatBytes } from "../core/units.ts";
import type { Devices } from "../devices/devices.ts";
import { pathKey } from "../core/paths.ts";
import type { Entry, StorageAdapter } from "../storage/adapter.ts";
import { deliveryRecord, type DeliveryRecords, type DeliveryRecordsOpener } from "../store/deliveries.ts";
import type { SyncEvents, TargetReport } from "./events.ts";
import { fileFilter } from "./filters.ts";
import { emptySourceRefusal, roomNeeded, type Action, type TargetEntry } from "./plan.ts";
import { runPool } from "./pool.ts";
import { scanSource, sourceHasher, type SourceScan } from "./scan.ts";
import { planTarget, type ScannedSource } from "./plan-target.ts";
import { printerGate, protectedWithin } from "./gate.ts";
import { executeAction } from "./execute.ts";
import { finishMove } from "./move.ts";

export interface SyncRunOptions {
  /** Plan and report, change nothing. */
  dryRun?: boolean;
  /** Let a mirror from a source with no files delete everything on its targets. */
  allowEmptySource?: boolean;
  /** Also sync printers that are not idle (the printed file is still never touched). */
  includeBusy?: boolean;
  /** Only targets on these devices (or with these labels). */
  only?: ReadonlySet<string>;
  /** Never targets on these devices (or with these labels). */
  except?: ReadonlySet<string>;
  signal?: AbortSignal;
  bus?: EventBus<SyncEvents>;
  /** What Ferry delivered before, per target: spares re-sending to targets that stamp their own times. */
  deliveries?: DeliveryRecordsOpener;
  /** Attempts per file for errors that may clear up (busy, transient). */
  attempts?: number;
  retryDelayMs?: number;
}

const endpointName = (endpoint: Endpoint) => (endpoint.type === "device" ? endpoint.device : endpoint.label);

export function selectTargets(
  sync: SyncConfig,
  options: Pick<SyncRunOptions, "only" | "except">,
): Endpoint[] {
  return sync.targets.filter((target) => {
    const names = [endpointName(target), target.label];
    if (options.only && options.only.size > 0 && !names.some((n) => options.only?.has(n))) return false;
    return !names.some((n) => options.except?.has(n));
  });
}

export async function runSync(
  sync: SyncConfig,
  devices: Devices,
  options: SyncRunOptions = {},
): Promise<TargetReport[]> {
  const filter = fileFilter(sync.include, sync.exclude);
  const targets = selectTargets(sync, options);
  const adapter = devices.endpoint(sync.source);
  let scan: SourceScan;
  try {
    scan = await scanSource(adapter, filter, options.signal);
  } catch (error) {
    const failure = toFerryError(error);
    return targets.map((target) => {
      const report = emptyReport(sync.name, target.label);
      report.outcome = "unreachable";
      report.reason = `source ${sync.source.label}: ${failure.message}`;
      options.bus?.emit("sync.target.finished", report);
      return report;
    });
  }
  const source: ScannedSource = { adapter, scan, filter, hash: sourceHasher(adapter, options.signal) };
  const reports = await Promise.all(
    targets.map((target) => syncTarget(sync, target, source, devices, options)),
  );
  if (sync.mode === "move" && !options.dryRun && targets.length > 0) {
    await finishMoves(sync, targets, reports, source, devices, options);
  }
  return reports;
}

/**
 * Move mode: a source file goes once every target holds a verified copy of it. A target that was
 * skipped or unreachable holds nothing new, so then no source file goes at all.
 */
async function finishMoves(
  sync: SyncConfig,
  targets: readonly Endpoint[],
  reports: readonly TargetReport[],
  source: ScannedSource,
  devices: Devices,
  options: SyncRunOptions,
): Promise<void> {
  const missing = new Set<string>();
  for (const report of reports) {
    if (report.outcome === "skipped" || report.outcome === "unreachable") return;
    for (const error of report.errors) missing.add(error.path);
    for (const action of report.actions)
      if (action.type === "skip" || action.type === "invalid") missing.add(action.path);
  }
  const copies = targets.map((endpoint) => {
    const target = devices.endpoint(endpoint);
    return { target, trustDelivery: target.capabilities.list === "none" };
  });
  for (const file of source.scan.files) {
    if (missing.has(file.path)) continue;
    try {
      await finishMove(
        source.adapter,
        file,
        copies.map((copy) => ({ ...copy, path: file.path })),
        options.signal,
      );
      options.bus?.emit("sync.source.removed", { sync: sync.name, path: file.path });
    } catch (error) {
      options.bus?.emit("sync.source.kept", {
        sync: sync.name,
        path: file.path,
        reason: toFerryError(error).message,
      });
    }
  }
}

function emptyReport(sync: string, target: string, dryRun = false): TargetReport {
  return {
    sync,
    target,
    outcome: "done",
    dryRun,
    planned: 0,
    done: 0,
    failed: 0,
    skipped: 0,
    bytes: 0,
    seconds: 0,
    errors: [],
    notes: [],
    actions: [],
  };
}

async function syncTarget(
  sync: SyncConfig,
  endpoint: Endpoint,
  source: ScannedSource,
  devices: Devices,
  options: SyncRunOptions,
): Promise<TargetReport> {
  const started = performance.now();
  const { bus, signal } = options;
  const ref = { sync: sync.name, target: endpoint.label };
  const report = emptyReport(sync.name, endpoint.label, options.dryRun === true);
  const note = (text: string) => {
    if (report.notes.includes(text)) return;
    report.notes.push(text);
    bus?.emit("sync.target.note", { ...ref, note: text });
  };
  const finish = () => {
    report.seconds = (performance.now() - started) / 1000;
    bus?.emit("sync.target.finished", report);
    return report;
  };

  try {
    const printer = endpoint.type === "device" ? devices.printer(endpoint.device) : undefined;
    const gated = printer !== undefined && sync.when === "idle" && !options.includeBusy;
    let protectedPath: string | undefined;
    if (printer) {
      const gate = await printerGate(printer, gated, signal);
      if (gate.state !== undefined) report.state = gate.state;
      if (gate.blocked) {
        report.outcome = gate.blocked.outcome;
        report.reason = gate.blocked.reason;
        return finish();
      }
      protectedPath = protectedWithin(gate.printing, endpoint);
    }

    const target = devices.endpoint(endpoint);
    const caps = target.capabilities;
    const key = (path: string) => pathKey(path, caps.caseInsensitive);
    const records = await options.deliveries?.(sync.name, endpoint.label);
    const { actions, entries, notes } = await planTarget(sync, source, target, {
      records,
      protectedPath,
      signal,
    });
    for (const text of notes) note(text);
    report.actions = actions;
    report.planned = actions.filter((a) => a.type !== "skip").length;
    const refusal = options.allowEmptySource
      ? undefined
      : emptySourceRefusal(actions, source.scan.files.length, sync.source.label);
    if (refusal !== undefined) {
      report.outcome = "failed";
      report.reason = refusal;
      return finish();
    }
    const bytes = actions.reduce((sum, a) => sum + (a.type === "upload" ? a.size : 0), 0);
    bus?.emit("sync.target.planned", {
      ...ref,
      actions,
      bytes,
      dryRun: options.dryRun === true,
    });

    for (const action of actions) {
      if (action.type === "skip") report.skipped++;
      if (action.type === "invalid") {
        report.failed++;
        report.errors.push({ path: action.path, code: "NAME_INVALID", message: action.reason });
      }
    }
    if (options.dryRun) return finish();

    const slots = devices.transferSlots(endpoint);
    // An upload waits for one of the device's transfer slots; a deletion moves no bytes.
    const transfer = <T>(action: Action, send: () => Promise<T>) =>
      action.type === "upload" ? slots.use(send) : send();
    let stop: { outcome: "unreachable" | "skipped"; reason: string } | undefined;
    const remember = async (records: DeliveryRecords, action: Action, stored: Entry | undefined) => {
      if (action.type === "upload" && stored) {
        records.set(key(action.targetPath), deliveryRecord(action, stored));
      } else if (action.type === "delete") {
        records.delete(key(action.path));
      }
      try {
        await records.save();
      } catch (error) {
        // The records only spare transfers; a run that cannot keep them still delivers.
        note(
          `delivery records not saved (files may be sent again next time): ${toFerryError(error).message}`,
        );
      }
    };
    const perform = async (action: Action) => {
      if (stop) {
        report.skipped++;
        return;
      }
      if (printer && gated) {
        const gate = await printerGate(printer, true, signal);
        if (gate.blocked) {
          stop = {
            outcome: gate.blocked.outcome,
            reason: `${gate.blocked.reason}; the rest waits for the next run`,
          };
          report.skipped++;
          return;
        }
      }
      const t0 = performance.now();
      try {
        const sent = await withRetry(action, ref, options, () =>
          transfer(action, () =>
            executeAction(action, source.adapter, target, {
              ...(signal ? { signal } : {}),
              onStart: () => bus?.emit("sync.action.started", { ...ref, action }),
              onProgress: (bytes) =>
                bus?.emit("sync.action.progress", {
                  ...ref,
                  path: action.path,
                  bytes,
                  size: action.type === "upload" ? action.size : 0,
                }),
            }),
          ),
        );
        report.done++;
        report.bytes += sent.bytes;
        bus?.emit("sync.action.done", { ...ref, action, bytes: sent.bytes, ms: performance.now() - t0 });
        if (records) await remember(records, action, sent.stored);
      } catch (error) {
        const failure = toFerryError(error);
        report.failed++;
        report.errors.push({ path: action.path, code: failure.code, message: failure.message });
        if (failure.code === "UNAVAILABLE" || failure.code === "AUTH") {
          stop = { outcome: "unreachable", reason: failure.message };
        }
      }
    };
    const uploads = actions.filter((a) => a.type === "upload");
    const deletes = actions.filter((a) => a.type === "delete");
    const rmdirs = actions.filter((a) => a.type === "rmdir");
    // Excess files go last, once everything new is in place, unless the new files need their room.
    const room = deletes.length > 0 ? await roomToMake(target, actions, entries, signal) : undefined;
    if (room) {
      note(`deleting excess files first: ${formatBytes(room.needed)} to add, ${formatBytes(room.free)} free`);
      for (const action of deletes) await perform(action);
    }
    await runPool(uploads, caps.maxConcurrency, perform);
    if (!room) for (const action of deletes) await perform(action);
    for (const action of rmdirs) await perform(action);

    if (report.failed > 0) report.outcome = "failed";
    if (stop) {
      report.outcome =
        stop.outcome === "unreachable" ? "unreachable" : report.failed > 0 ? "failed" : "skipped";
      report.reason = stop.reason;
    }
    return finish();
  } catch (error) {
    const failure = toFerryError(error);
    report.outcome = failure.code === "UNAVAILABLE" ? "unreachable" : "failed";
    report.reason = failure.message;
    return finish();
  }
}

/** How much room the uploads need and the target has, when the target cannot fit them now. */
async function roomToMake(
  target: StorageAdapter,
  actions: readonly Action[],
  entries: readonly TargetEntry[],
  signal?: AbortSignal,
): Promise<{ needed: number; free: number } | undefined> {
  if (!target.usage) return undefined;
  // Not knowing the free space is no reason to fail: then the safe order stands.
  const usage = await target.usage(signal ? { signal } : {}).catch(() => undefined);
  const free = usage?.freeBytes;
  const needed = roomNeeded(actions, entries, target.capabilities.caseInsensitive);
  return free !== undefined && needed > free ? { needed, free } : undefined;
}

async function withRetry<T>(
  action: Action,
  ref: { sync: string; target: string },
  options: SyncRunOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const attempts = options.attempts ?? 3;
  const baseDelay = options.retryDelayMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const failure = toFerryError(error);
      const willRetry = failure.retryable && attempt < attempts && !options.signal?.aborted;
      options.bus?.emit("sync.action.failed", { ...ref, action, error: failure, willRetry });
      if (!willRetry) throw failure;
      await sleep(
        baseDelay * 2 ** (attempt - 1),
        undefined,
        options.signal ? { signal: options.signal } : {},
      );
    }
  }
}
