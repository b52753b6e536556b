/** The `jobs` table's rows as the farm sees them: the Job type, its columns and conversions. */
import { randomBytes } from "node:crypto";
import type { Selectable } from "kysely";
import { FerryError } from "../core/errors.ts";
import type { JobsTable } from "../store/schema.ts";
import { isJobState, type JobState } from "./states.ts";

export interface JobFile {
  /** The file library's id (opaque here); none for a print started at the printer. */
  id: string | null;
  name: string;
  sha256: string | null;
}

export interface Job {
  id: string;
  orderId: string;
  file: JobFile;
  /** Who asked (a user's name); null for a print started at the printer. */
  owner: string | null;
  /** Higher runs first. */
  priority: number;
  /** The printer model the job needs, if any. */
  model: string | null;
  /** Tags the printer must all have (material, nozzle, location). */
  tags: string[];
  notes: string | null;
  state: JobState;
  printer: string | null;
  /** The printer's own id of the print, when it numbers them. */
  printerJobId: string | null;
  /** The file on the printer (a path of its storage adapter). */
  printerPath: string | null;
  /** `printer`: started at the printer by hand and adopted; watched, never controlled unless taken over. */
  origin: "user" | "printer";
  takenOverBy: string | null;
  /** 0..1 while printing, as the printer says. */
  progress: number | null;
  remainingS: number | null;
  /** The last transition's reason. */
  reason: string | null;
  uploadedAt: number | null;
  /** When a worker asked the printer to start it (set once: a start is never asked twice). */
  startRequestedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface HistoryEntry {
  jobId: string;
  seq: number;
  from: JobState | null;
  to: JobState;
  actor: string;
  at: number;
  reason: string | null;
}

export interface NewJob {
  file: JobFile;
  owner: string | null;
  priority?: number;
  model?: string | null;
  tags?: readonly string[];
  notes?: string | null;
  state: "pending_approval" | "queued" | "printing" | "paused";
  origin?: "user" | "printer";
  /** Adopted prints only: where the print runs. */
  printer?: string;
  printerJobId?: string | null;
  printerPath?: string | null;
  progress?: number | null;
  remainingS?: number | null;
  startedAt?: number | null;
}

/** Columns a transition or an update may set besides the state. */
export type JobUpdate = Partial<
  Pick<
    Job,
    | "printer"
    | "printerJobId"
    | "printerPath"
    | "progress"
    | "remainingS"
    | "uploadedAt"
    | "startRequestedAt"
    | "startedAt"
    | "takenOverBy"
    | "priority"
  >
>;

export type Row = Selectable<JobsTable>;

export const COLUMNS = [
  "id",
  "order_id",
  "file_id",
  "file_name",
  "file_sha256",
  "owner",
  "priority",
  "required_model",
  "required_tags",
  "notes",
  "state",
  "printer",
  "printer_job_id",
  "printer_path",
  "origin",
  "taken_over_by",
  "progress",
  "remaining_s",
  "reason",
  "uploaded_at",
  "start_requested_at",
  "started_at",
  "finished_at",
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof JobsTable)[];

/** Ids in creation order (ms, then a counter), random in the tail. */
export function farmId(prefix: string): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else sequence++;
  return `${prefix}${lastMs.toString(36)}${sequence.toString(36).padStart(3, "0")}${randomBytes(4).toString("hex")}`;
}
let lastMs = 0;
let sequence = 0;

export function toJob(row: Row): Job {
  if (!isJobState(row.state))
    throw new FerryError("PROTOCOL", `job ${row.id} has an unknown state "${row.state}"`);
  return {
    id: row.id,
    orderId: row.order_id,
    file: { id: row.file_id, name: row.file_name, sha256: row.file_sha256 },
    owner: row.owner,
    priority: row.priority,
    model: row.required_model,
    tags: JSON.parse(row.required_tags) as string[],
    notes: row.notes,
    state: row.state,
    printer: row.printer,
    printerJobId: row.printer_job_id,
    printerPath: row.printer_path,
    origin: row.origin,
    takenOverBy: row.taken_over_by,
    progress: row.progress,
    remainingS: row.remaining_s,
    reason: row.reason,
    uploadedAt: row.uploaded_at,
    startRequestedAt: row.start_requested_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toColumns(update: JobUpdate): Partial<Row> {
  const out: Partial<Row> = {};
  if (update.printer !== undefined) out.printer = update.printer;
  if (update.printerJobId !== undefined) out.printer_job_id = update.printerJobId;
  if (update.printerPath !== undefined) out.printer_path = update.printerPath;
  if (update.progress !== undefined) out.progress = update.progress;
  if (update.remainingS !== undefined) out.remaining_s = update.remainingS;
  if (update.uploadedAt !== undefined) out.uploaded_at = update.uploadedAt;
  if (update.startRequestedAt !== undefined) out.start_requested_at = update.startRequestedAt;
  if (update.startedAt !== undefined) out.started_at = update.startedAt;
  if (update.takenOverBy !== undefined) out.taken_over_by = update.takenOverBy;
  if (update.priority !== undefined) out.priority = update.priority;
  return out;
}
