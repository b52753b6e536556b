/**
 * A one-shot run of syncs (`ferry sync`): the same planning pass, handlers and task runner as
 * `ferry serve`, over a queue that lives in memory and dies with the run (ADR 13). Each sync's
 * source is scanned once and every target planned at once; printers are looked at first and left
 * out when not idle; the runner works until nothing is left to do now, giving up — for the next
 * run — on what would have to wait (a printer that started printing, a device that went away).
 * One target failing never stops the others; the result is one report per target.
 */
import type { Endpoint, SyncConfig } from "../config/index.ts";
import { EventBus } from "../core/events.ts";
import { isFerryError, toFerryError } from "../core/errors.ts";
import { silentLogger, type Logger } from "../core/logger.ts";
import { deviceOf, type Devices } from "../devices/devices.ts";
import { deviceQueues } from "../devices/queues.ts";
import { storeDeliveries, type DeliveryRecordsOpener } from "../store/deliveries.ts";
import { openMemoryStore } from "../store/store.ts";
import type { TaskRef } from "../tasks/events.ts";
import { StoreTaskQueue } from "../tasks/store-queue.ts";
import { TaskRunner, type Held } from "../tasks/runner.ts";
import type { EngineEvents, TargetReport } from "./events.ts";
import { engineContext } from "./engine/context.ts";
import { registerSyncHandlers } from "./engine/handlers.ts";
import { planSync } from "./engine/planner.ts";
import { workersFor } from "./engine/engine.ts";

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
  bus?: EventBus<EngineEvents>;
  /** What Ferry delivered before, per target (default: kept for this run only). */
  deliveries?: DeliveryRecordsOpener;
  /** Attempts per change for errors that may clear up (busy, transient); default 3. */
  attempts?: number;
  logger?: Logger;
}

/** The source of a sync cannot be read at all: nothing was planned, no target touched. */
export class SourceUnreadable extends Error {
  override readonly name = "SourceUnreadable";
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

/** One sync; see runSyncs. */
export function runSync(
  sync: SyncConfig,
  devices: Devices,
  options: SyncRunOptions = {},
): Promise<TargetReport[]> {
  return runSyncs([sync], devices, options);
}

export async function runSyncs(
  syncs: readonly SyncConfig[],
  devices: Devices,
  options: SyncRunOptions = {},
): Promise<TargetReport[]> {
  const bus = options.bus ?? new EventBus<EngineEvents>();
  const logger = options.logger ?? silentLogger;
  const signal = options.signal ?? new AbortController().signal;
  const started = performance.now();
  const memory = await openMemoryStore();
  const queue = new StoreTaskQueue(memory);
  const ctx = engineContext({
    config: devices.config,
    syncs,
    devices,
    queue,
    deliveries: options.deliveries ?? storeDeliveries(memory),
    bus,
    logger,
    maxAttempts: options.attempts ?? 3,
  });

  /** Devices the run stopped working on, and why (a printer that started printing, a device gone). */
  const held = new Map<string, Held>();
  const heldTasks = new Set<string>();
  const endpointOf = (ref: { sync?: string | undefined; target?: string | undefined }) => {
    if (ref.sync === undefined) return undefined;
    const sync = ctx.sync(ref.sync);
    return ref.target === "source" ? sync.source : sync.targets.find((t) => t.label === ref.target);
  };
  const runner = new TaskRunner({
    queue,
    bus,
    logger,
    node: "ferry-sync",
    workers: workersFor(syncs, devices),
    patience: "give-up",
    heartbeatMs: 5_000,
    paused: () => ({ queues: [...held.keys()].flatMap(deviceQueues) }),
    held: (task, label, why) => {
      heldTasks.add(task.id);
      const endpoint = endpointOf(label);
      if (why.wholeDevice && endpoint && !held.has(deviceOf(endpoint))) held.set(deviceOf(endpoint), why);
    },
  });
  registerSyncHandlers(runner, ctx, { includeBusy: options.includeBusy === true });

  const reports = new Map<string, TargetReport>();
  const reportOf = (ref: { sync?: string | undefined; target?: string | undefined }) =>
    ref.sync === undefined || ref.target === undefined
      ? undefined
      : reports.get(`${ref.sync}\u0000${ref.target}`);
  const settled = (ref: TaskRef) => {
    const report = reportOf(ref);
    if (report) report.seconds = (performance.now() - started) / 1000;
  };
  const offs = [
    bus.on("task.done", ({ payload: e }) => {
      const report = reportOf(e);
      if (!report) return;
      if (heldTasks.has(e.id)) report.skipped++;
      else report.done++;
      report.bytes += e.bytes;
      settled(e);
    }),
    bus.on("task.failed", ({ payload: e }) => {
      if (e.outcome !== "dead") return;
      // A file that could not be staged reaches no target.
      const reports = e.target === "source" ? sourceReports(e.sync) : [reportOf(e)];
      for (const report of reports) {
        if (!report) continue;
        report.failed++;
        report.errors.push({ path: e.path ?? "", code: e.code, message: e.error });
      }
      if (e.target === "source" && e.sync !== undefined && e.path !== undefined && e.kind === "sync.finish")
        bus.emit("sync.source.kept", { sync: e.sync, path: e.path, reason: e.error });
      settled(e);
    }),
  ];
  const sourceReports = (sync: string | undefined) => [...reports.values()].filter((r) => r.sync === sync);

  const stop = () => void runner.stop("interrupted");
  signal.addEventListener("abort", stop, { once: true });
  try {
    for (const sync of syncs) {
      const targets = selectTargets(sync, options);
      for (const target of targets)
        reports.set(
          `${sync.name}\u0000${target.label}`,
          emptyReport(sync.name, target.label, options.dryRun === true),
        );
      let plan;
      try {
        plan = await planSync(sync, ctx, {
          reason: "ferry sync",
          signal,
          targets,
          gatePrinters: { includeBusy: options.includeBusy === true },
          ...(options.dryRun ? { dryRun: true } : {}),
          ...(options.allowEmptySource ? { allowEmptySource: true } : {}),
        });
      } catch (error) {
        const failure = toFerryError(error);
        if (isFerryError(failure, "NOT_FOUND") && sync.source.type === "local")
          throw new SourceUnreadable(
            `sync ${sync.name}: source ${sync.source.label} does not exist (${sync.source.path})`,
          );
        for (const target of targets) {
          const report = reportOf({ sync: sync.name, target: target.label });
          if (!report) continue;
          report.outcome = "unreachable";
          report.reason = `source ${sync.source.label}: ${failure.message}`;
        }
        continue;
      }
      for (const planned of plan.targets) {
        const report = reportOf({ sync: sync.name, target: planned.endpoint.label });
        if (!report) continue;
        report.actions = planned.actions;
        report.notes = planned.notes;
        report.planned = planned.actions.filter((a) => a.type !== "skip").length;
        if (planned.state !== undefined) report.state = planned.state;
        if (planned.outcome) {
          report.outcome = planned.outcome.outcome;
          report.reason = planned.outcome.reason;
          // Nothing of this target is queued: its plan is shown, not counted as done.
          continue;
        }
        for (const action of planned.actions) {
          if (action.type === "skip") report.skipped++;
          if (action.type === "invalid") {
            report.failed++;
            report.errors.push({ path: action.path, code: "NAME_INVALID", message: action.reason });
          }
        }
      }
    }
    if (!options.dryRun && !signal.aborted) await runner.drain();
    // What waits on a device the run stopped working on is left for the next run, and given up cleanly.
    for (const task of await queue.list({ status: "queued", limit: 1_000_000 })) {
      const report = reportOf(runner.describe(task));
      if (report) report.skipped++;
      await runner.abandon(task);
    }
  } finally {
    signal.removeEventListener("abort", stop);
    for (const off of offs) off();
    await memory.close();
  }

  const results = [...reports.values()];
  for (const report of results) {
    const endpoint = endpointOf(report);
    const why = endpoint ? held.get(deviceOf(endpoint)) : undefined;
    if (report.reason === undefined && report.failed > 0) report.outcome = "failed";
    if (why && report.reason === undefined) {
      report.outcome = why.why === "away" ? "unreachable" : report.failed > 0 ? "failed" : "skipped";
      report.reason = why.why === "away" ? why.message : `${why.message}; the rest waits for the next run`;
    }
    if (signal.aborted && report.reason === undefined && report.done + report.skipped < report.planned) {
      report.outcome = "failed";
      report.reason = "interrupted";
    }
    bus.emit("sync.target.finished", report);
  }
  return results;
}

function emptyReport(sync: string, target: string, dryRun: boolean): TargetReport {
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
