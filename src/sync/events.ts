/** What a sync run publishes on the event bus; the CLI, the server and bridges subscribe. */
import type { FerryError } from "../core/errors.ts";
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
  /** Why a target was skipped or unreachable (e.g. "printer is PRINTING"). */
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
  "sync.target.planned": TargetRef & { actions: readonly Action[]; bytes: number; dryRun: boolean };
  /** Something the operator should know about a target that is not a failure (also in `notes`). */
  "sync.target.note": TargetRef & { note: string };
  "sync.action.started": TargetRef & { action: Action };
  "sync.action.progress": TargetRef & { path: string; bytes: number; size: number };
  "sync.action.done": TargetRef & { action: Action; bytes: number; ms: number };
  "sync.action.failed": TargetRef & { action: Action; error: FerryError; willRetry: boolean };
  "sync.target.finished": TargetReport;
  /** Move mode: the source file was deleted after every target got a verified copy. */
  "sync.source.removed": { sync: string; path: string };
  /** Move mode: the source file stays (a copy is missing or does not match). */
  "sync.source.kept": { sync: string; path: string; reason: string };
}
