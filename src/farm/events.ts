/** What the farm publishes (docs/events.md has the whole vocabulary); displays and notifications subscribe. */
import type { Activity, Connection, Temperature } from "../printers/driver.ts";
import type { JobState } from "./states.ts";

export interface FarmEvents {
  /**
   * A job changed state (`from: null`: it was created, by a request or adopted from the printer).
   * Notifications watch `to`: `printed` (finished), `failed`, `cancelled`, `completed`.
   */
  "job.state": {
    id: string;
    orderId: string;
    file: string;
    owner: string | null;
    origin: "user" | "printer";
    printer: string | null;
    from: JobState | null;
    to: JobState;
    actor: string;
    reason: string | null;
  };
  /** A printing job's progress as the printer reports it (at most once per worker tick). */
  "job.progress": { id: string; printer: string; progress: number; remainingS: number | null };
  /** Why a queued job still waits, when that changes ("no idle printer with tag PETG"). */
  "job.waiting": { id: string; reason: string };
  /** A farm printer's connection or activity changed. */
  "printer.state": {
    printer: string;
    connection: Connection;
    activity: Activity;
    rawState: string | null;
    before: { connection: Connection; activity: Activity } | null;
  };
  /**
   * A farm printer's temperatures changed (a target, or an actual by a degree or more; live only,
   * never in the event history): for live displays.
   */
  "printer.temperatures": { printer: string; temperatures: Temperature[] };
  /** A farm printer is in error, asks for attention, refuses Ferry's credentials or went offline. */
  "printer.error": {
    printer: string;
    problem: "error" | "attention" | "offline" | "auth_failed";
    message: string;
  };
  /** A print is done and its part is on the bed: someone must take it off and mark the bed clear. */
  "printer.waiting_bed_clear": { printer: string; job: string; file: string };
  /** The bed was marked clear (by an operator, or by the printer's auto_clear) or is taken by a print. */
  "printer.bed": { printer: string; clear: boolean; by: string };
  /** Maintenance began (`reason`) or ended (`null`): the scheduler leaves the printer alone meanwhile. */
  "printer.maintenance": { printer: string; reason: string | null; by: string };
  "farm.started": { printers: string[] };
  "farm.stopped": Record<string, never>;
}
