/** What sync work publishes (docs/events.md has the whole vocabulary); the CLI, server and bridges subscribe. */
import type { FerryError } from "../core/errors.ts";
import type { DeviceEvents } from "../devices/events.ts";
import type { TaskEvents } from "../tasks/events.ts";
import type { Action } from "./plan.ts";

export interface TargetRef {
  sync: string;
  /** The endpoint's label, e.g. "mk4-a" or "mk4-a:models" or "./backup". */
  target: string;
}

export type TargetOutcome = "done" | "failed" | "unreachable" | "skipped";

export interface ActionError {
  path: string;
  code: FerryError["code"];
  message: string;
}

export interface TargetReport extends TargetRef {
  outcome: TargetOutcome;
  /** Why a target was skipped, unreachable or failed as a whole (e.g. "printer is PRINTING"). */
  reason?: string;
  /** The device's state word when it was looked at. */
  state?: string;
  planned: number;
  done: number;
  failed: number;
  /** Actions not done on purpose (the printed file, a printer that became busy). */
  skipped: number;
  bytes: number;
  seconds: number;
  errors: ActionError[];
  /** What the operator should know that is not a failure (e.g. a checksum compare that fell back). */
  notes: string[];
  /** Planned only, nothing changed. */
  dryRun: boolean;
  /** The plan, for --dry-run and --json. */
  actions: Action[];
}

export interface SyncEvents {
  /** A planning pass found what one target needs (every pass of `ferry serve`, once per `ferry sync`). */
  "sync.planned": TargetRef & { actions: readonly Action[]; bytes: number; dryRun: boolean; reason: string };
  /** Something the operator should know about a target that is not a failure (also in `notes`). */
  "sync.note": TargetRef & { note: string };
  /** A planning pass could not run (the source cannot be read). */
  "sync.scan.failed": { sync: string; reason: string; error: string };
  /** `ferry sync`: one target's report, once its work is over. */
  "sync.target.finished": TargetReport;
  /** Move mode: the source file was deleted after every target got a verified copy. */
  "sync.source.removed": { sync: string; path: string };
  /** Move mode: the source file stays for now (a copy is missing or does not match). */
  "sync.source.kept": { sync: string; path: string; reason: string };
  /** An operator paused a sync: it plans nothing and its queued tasks wait. */
  "sync.paused": { sync: string; by: string | null };
  "sync.resumed": { sync: string };
  "engine.started": { syncs: string[]; devices: string[] };
  "engine.stopped": { released: number };
}

/** Everything the sync engine's parts publish on one bus. */
export type EngineEvents = SyncEvents & TaskEvents & DeviceEvents;
