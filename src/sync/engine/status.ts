/**
 * What `ferry serve` knows of each sync for people and the API: its last planning pass, what it
 * queued, why it last failed, when a trigger fires next, whether an operator paused it.
 * Kept in memory from the engine's events: it describes this run (the store keeps the tasks).
 */
import { Cron } from "croner";
import type { SyncConfig } from "../../config/index.ts";
import type { Subscriber } from "../../core/events.ts";
import type { SyncEvents } from "../events.ts";

export interface SyncPass {
  /** When the pass was planned (ms since the epoch). */
  at: number;
  /** What started it: "start", "poll", "schedule", "rescan", "manual", "<device> is back"... */
  reason: string;
  /** Changes it queued, over every target (each target's latest plan). */
  changes: number;
  bytes: number;
}

interface TargetPlan {
  at: number;
  reason: string;
  changes: number;
  bytes: number;
}

export interface NextTrigger {
  /** "watch": on every change, and a rescan at `at`; "poll" / "schedule": a pass at `at`;
   *  "manual": only when asked. */
  kind: "watch" | "poll" | "schedule" | "manual";
  at: number | null;
}

export interface SyncView {
  name: string;
  mode: SyncConfig["mode"];
  source: string;
  targets: string[];
  paused: { at: number; by: string | null } | null;
  lastPass: SyncPass | null;
  /** The last pass that could not read the source, if it is newer than the last good one. */
  lastError: { at: number; reason: string; error: string } | null;
  next: NextTrigger;
}

export class SyncStatus {
  /** sync → target → its latest plan. */
  readonly #plans = new Map<string, Map<string, TargetPlan>>();
  readonly #errors = new Map<string, { at: number; reason: string; error: string }>();
  readonly #off: (() => void)[];

  constructor(bus: Subscriber<SyncEvents>) {
    this.#off = [
      bus.on("sync.planned", ({ at, payload: e }) => {
        if (e.dryRun) return;
        const changes = e.actions.filter((a) => a.type !== "skip" && a.type !== "invalid").length;
        let plans = this.#plans.get(e.sync);
        if (!plans) this.#plans.set(e.sync, (plans = new Map<string, TargetPlan>()));
        plans.set(e.target, { at, reason: e.reason, changes, bytes: e.bytes });
        this.#errors.delete(e.sync);
      }),
      bus.on("sync.scan.failed", ({ at, payload: e }) =>
        this.#errors.set(e.sync, { at, reason: e.reason, error: e.error }),
      ),
    ];
  }

  view(sync: SyncConfig, paused: SyncView["paused"], now: number): SyncView {
    const lastPass = passOf(this.#plans.get(sync.name));
    return {
      name: sync.name,
      mode: sync.mode,
      source: sync.source.label,
      targets: sync.targets.map((t) => t.label),
      paused,
      lastPass,
      lastError: this.#errors.get(sync.name) ?? null,
      next: paused ? { kind: nextKind(sync), at: null } : nextTrigger(sync, lastPass?.at ?? now, now),
    };
  }

  close(): void {
    for (const off of this.#off) off();
  }
}

/** The latest pass: the newest plan's time and reason, and what every target has queued. */
function passOf(plans: Map<string, TargetPlan> | undefined): SyncPass | null {
  if (!plans || plans.size === 0) return null;
  const all = [...plans.values()];
  const newest = all.reduce((a, b) => (b.at > a.at ? b : a));
  return {
    at: newest.at,
    reason: newest.reason,
    changes: all.reduce((n, p) => n + p.changes, 0),
    bytes: all.reduce((n, p) => n + p.bytes, 0),
  };
}

function nextKind(sync: SyncConfig): NextTrigger["kind"] {
  if (sync.watch) return "watch";
  if (sync.pollS !== undefined) return "poll";
  if (sync.schedule !== undefined) return "schedule";
  return "manual";
}

/** The soonest trigger after the last pass (a watched sync also plans on every change). */
function nextTrigger(sync: SyncConfig, lastAt: number, now: number): NextTrigger {
  const times: number[] = [];
  if (sync.watch) times.push(lastAt + sync.rescanS * 1000);
  if (sync.pollS !== undefined) times.push(lastAt + sync.pollS * 1000);
  if (sync.schedule !== undefined) {
    const next = new Cron(sync.schedule, { paused: true }).nextRun(new Date(now));
    if (next) times.push(next.getTime());
  }
  return { kind: nextKind(sync), at: times.length > 0 ? Math.max(now, Math.min(...times)) : null };
}
