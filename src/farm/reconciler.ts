/**
 * The printer worker's decision, a pure function: the job the store assigns to a printer and what
 * the printer says now (its snapshot) in, one action out — at most one transition. It holds no
 * memory of its own, so after a restart (kill -9 at any moment) the next decision starts from the
 * store and the printer alone: a print still running is followed, one that finished or was
 * cancelled at the printer meanwhile is recorded as such, a start is never asked twice (the store
 * keeps that it was asked), and a print someone started at the printer by hand is adopted.
 */
import { pathKey } from "../core/paths.ts";
import type { Activity, JobSnapshot, PrinterSnapshot } from "../printers/driver.ts";
import type { Job, JobUpdate } from "./jobs.ts";
import type { JobState } from "./states.ts";

/** Where the job's upload task is. */
export type UploadStatus = "none" | "queued" | "running" | "dead";

export interface ReconcileInput {
  printer: string;
  snapshot: PrinterSnapshot;
  /** The job holding the printer, if any. */
  job: Job | undefined;
  /** The printer's latest jobs that started (to tell a print Ferry knows from one it does not). */
  recent: readonly Job[];
  bedClear: boolean;
  autoClear: boolean;
  /** Why the printer is in maintenance, or null. */
  maintenance: string | null;
  upload: UploadStatus;
  /** The dead upload's last error. */
  uploadError: string | null;
  /** The printer's storage compares names case-insensitively (FAT). */
  caseInsensitive: boolean;
  now: number;
  /** How long a requested start may take to show before it counts as not started. */
  startGraceMs: number;
  /** How often this job's start was asked again after the printer did not start it. */
  startRetries: number;
}

/** A start the printer did not carry out is asked again this often before the job fails. */
export const MAX_START_RETRIES = 3;

/** Who made a transition happen: the printer (seen there) or Ferry (decided here). */
export type Cause = "printer" | "ferry";

export type Action =
  | { type: "wait"; why: string }
  | { type: "transition"; to: JobState; by: Cause; reason?: string; set?: JobUpdate }
  /** scheduled → uploading, and the upload queued. */
  | { type: "begin-upload" }
  /** The upload task is missing: queue it again. */
  | { type: "upload" }
  /** Record that the start is asked for (once), then ask the printer to print the file. */
  | { type: "start" }
  /** The printer is at rest and never started the job's file: forget the request, to ask again. */
  | { type: "retry-start"; why: string }
  /** Ask the printer to stop the job's print. */
  | { type: "cancel" }
  /** A cancelled job never reached the printer: drop its queued upload, then cancelled. */
  | { type: "drop-upload" }
  /** A print nobody asked Ferry for: a job of origin `printer` in `state`. */
  | { type: "adopt"; state: "printing" | "paused"; job: JobSnapshot & { file: string } };

/** Two starts of one file further apart than this are two prints. */
export const SAME_START_MS = 120_000;

const RUNNING: readonly Activity[] = ["printing", "paused", "attention"];
const READY: readonly Activity[] = ["idle", "finished", "stopped"];

/** Whether the printer's job is this job's print. */
export function isThisPrint(job: Job, shown: JobSnapshot | undefined, caseInsensitive: boolean): boolean {
  if (shown?.file === undefined || job.printerPath === null) return false;
  if (pathKey(shown.file, caseInsensitive) !== pathKey(job.printerPath, caseInsensitive)) return false;
  if (job.printerJobId !== null && shown.id !== undefined) return job.printerJobId === shown.id;
  // Without ids, a print of the same file that began at another time is another print.
  const began = job.startedAt ?? job.startRequestedAt;
  if (began === null || shown.startedAt === undefined) return true;
  return job.startedAt === null
    ? shown.startedAt >= began - SAME_START_MS
    : Math.abs(shown.startedAt - began) <= SAME_START_MS;
}

const describe = (s: PrinterSnapshot) =>
  s.job?.file === undefined ? (s.rawState ?? s.activity) : `${s.rawState ?? s.activity} ${s.job.file}`;

const wait = (why: string): Action => ({ type: "wait", why });

function byPrinter(to: JobState, reason: string, set?: JobUpdate): Action {
  return { type: "transition", to, by: "printer", reason, ...(set ? { set } : {}) };
}

function byFerry(to: JobState, reason: string, set?: JobUpdate): Action {
  return { type: "transition", to, by: "ferry", reason, ...(set ? { set } : {}) };
}

export function decide(input: ReconcileInput): Action {
  const { snapshot: s, job } = input;
  if (s.connection !== "online") {
    // A job not begun yet goes back to the queue for another printer; any other waits for it.
    if (job?.state === "scheduled")
      return byFerry("queued", `${input.printer} is ${s.connection}: ${s.offlineReason ?? "no answer"}`);
    return wait(`${input.printer} is ${s.connection}`);
  }
  if (!job) return unassigned(input);
  switch (job.state) {
    case "scheduled":
      return scheduled(input);
    case "uploading":
      return uploading(input, job);
    case "printing":
    case "paused":
      return printing(input, job);
    case "printed":
      return printed(input, job);
    case "cancelling":
      return cancelling(input, job);
    default:
      return wait(`job ${job.id} is ${job.state}`);
  }
}

/** A print running at a printer, or finished there, that Ferry knows nothing of. */
function unassigned(input: ReconcileInput): Action {
  const { snapshot: s } = input;
  const shown = s.job;
  if (shown?.file === undefined) return wait(s.activity);
  const file = shown.file;
  if (RUNNING.includes(s.activity))
    return { type: "adopt", state: s.activity === "paused" ? "paused" : "printing", job: { ...shown, file } };
  const known = input.recent.some((job) => isThisPrint(job, shown, input.caseInsensitive));
  // It ended while Ferry was not watching: adopted, so the part on the bed is accounted for.
  if ((s.activity === "finished" || s.activity === "stopped") && !known)
    return { type: "adopt", state: "printing", job: { ...shown, file } };
  return wait(s.activity);
}

function scheduled(input: ReconcileInput): Action {
  const { snapshot: s } = input;
  if (input.maintenance !== null)
    return byFerry("queued", `${input.printer} went into maintenance (${input.maintenance})`);
  if (RUNNING.includes(s.activity)) return byFerry("queued", `${input.printer} is busy: ${describe(s)}`);
  if (s.activity === "error") return byFerry("queued", `${input.printer} is in error (${describe(s)})`);
  if (READY.includes(s.activity)) return { type: "begin-upload" };
  return wait(s.activity);
}

function uploading(input: ReconcileInput, job: Job): Action {
  const { snapshot: s } = input;
  if (job.startRequestedAt !== null) {
    if (isThisPrint(job, s.job, input.caseInsensitive) && s.activity !== "idle") {
      return byPrinter("printing", "the printer started it", {
        ...(s.job?.id === undefined ? {} : { printerJobId: s.job.id }),
        startedAt: s.job?.startedAt ?? input.now,
      });
    }
    if (input.now - job.startRequestedAt < input.startGraceMs) return wait("starting");
    const why = `${input.printer} did not start ${job.printerPath ?? job.file.name}: it shows ${describe(s)}`;
    // The file names this attempt (upload.ts), so a printer at rest showing another file proves
    // the request never reached it (e.g. Ferry was killed between recording it and sending it).
    if (READY.includes(s.activity) && input.startRetries < MAX_START_RETRIES)
      return { type: "retry-start", why };
    return byFerry("failed", why);
  }
  if (job.uploadedAt === null) {
    if (input.upload === "dead")
      return byFerry("failed", `the upload failed: ${input.uploadError ?? "unknown error"}`);
    if (input.upload === "none") return { type: "upload" };
    return wait("uploading");
  }
  if (RUNNING.includes(s.activity))
    return byFerry("queued", `someone started a print at ${input.printer}: ${describe(s)}`);
  if (!READY.includes(s.activity)) return wait(s.activity);
  if (!input.bedClear) return wait("the bed is not marked clear");
  return { type: "start" };
}

function printing(input: ReconcileInput, job: Job): Action {
  const { snapshot: s } = input;
  if (!isThisPrint(job, s.job, input.caseInsensitive)) {
    // A printer that names no job and is not at rest tells nothing yet (a reply between two states).
    if (s.job?.file === undefined && !READY.includes(s.activity)) return wait(s.activity);
    return byFerry(
      "failed",
      `${input.printer} no longer shows this print (it shows ${describe(s)}); it ended while Ferry was not watching`,
    );
  }
  switch (s.activity) {
    case "printing":
      return job.state === "paused" ? byPrinter("printing", "resumed") : wait("printing");
    case "paused":
      return job.state === "printing" ? byPrinter("paused", "paused at the printer") : wait("paused");
    case "attention":
      return job.state === "printing"
        ? byPrinter("paused", `the printer asks for attention (${s.rawState ?? "attention"})`)
        : wait("attention");
    case "finished":
      return byPrinter("printed", "the print finished");
    case "stopped":
      return byPrinter("cancelled", "stopped at the printer");
    case "error":
      return byPrinter("failed", `the printer reports an error (${s.rawState ?? "error"})`);
    default:
      return wait(s.activity);
  }
}

function printed(input: ReconcileInput, job: Job): Action {
  const { snapshot: s } = input;
  if (input.autoClear) return byFerry("completed", "the printer clears its own bed (auto_clear)");
  // A new print at the printer means someone took the part off.
  if (RUNNING.includes(s.activity) && !isThisPrint(job, s.job, input.caseInsensitive))
    return byPrinter("completed", `someone started a print at ${input.printer}, so its bed was cleared`);
  return wait("waiting for the bed to be marked clear");
}

function cancelling(input: ReconcileInput, job: Job): Action {
  const { snapshot: s } = input;
  // A print adopted from the printer began there: no start was asked, yet it runs.
  if (job.startRequestedAt === null && job.startedAt === null) {
    if (input.upload === "running") return wait("stopping the upload");
    return { type: "drop-upload" };
  }
  const ours = isThisPrint(job, s.job, input.caseInsensitive);
  if (ours && RUNNING.includes(s.activity)) return { type: "cancel" };
  if (ours && s.activity === "busy") return wait("stopping");
  const asked = job.startRequestedAt;
  if (!ours && s.activity === "idle" && asked !== null && input.now - asked < input.startGraceMs)
    return wait("starting");
  return byFerry(
    "cancelled",
    ours && s.activity === "finished" ? "it finished before it could be stopped" : "stopped",
  );
}
