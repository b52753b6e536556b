/**
 * What the farm checks of a request before it touches the store: a print request made into jobs,
 * whether Ferry may control a job, and what a printer lacks for a job. Pure: clear errors naming
 * the field or the job at fault.
 */
import type { FerryConfig, PrinterSettings } from "../config/index.ts";
import { TRUSTED_ROLES } from "../config/schema.ts";
import { FerryError } from "../core/errors.ts";
import type { Job, JobFile, NewJob } from "./jobs.ts";

export interface SubmitRequest {
  file: JobFile & { id: string; name: string };
  /** Who asks. */
  owner: string;
  /** The asker's role: `farm.approval` roles wait for approval. */
  role: string;
  /** Copies; each is a job of one order (default 1). */
  quantity?: number;
  priority?: number;
  model?: string | null;
  tags?: readonly string[];
  notes?: string | null;
}

const MAX_QUANTITY = 1000;

/** A request the farm turns down, naming what it is about (`subject`): never worth retrying as it is. */
export function refused(
  code: "CONFLICT" | "NOT_FOUND" | "UNSUPPORTED",
  message: string,
  subject: string,
): FerryError {
  return new FerryError(code, message, { subject, retryable: false });
}

export function invalid(message: string): FerryError {
  return new FerryError("NAME_INVALID", message, { retryable: false });
}

/** The jobs of a print request: `quantity` copies, queued, or waiting for approval when the role says so. */
export function requestedJobs(request: SubmitRequest, config: FerryConfig): NewJob[] {
  const quantity = request.quantity ?? 1;
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY)
    throw invalid(`quantity must be a whole number from 1 to ${MAX_QUANTITY}`);
  const priority = request.priority ?? 0;
  if (!Number.isInteger(priority)) throw invalid("priority must be a whole number");
  if (request.file.name.trim() === "") throw invalid("the file needs a name");
  if (request.owner.trim() === "") throw invalid("a job needs an owner");
  const tags = (request.tags ?? []).map((t) => t.trim());
  if (tags.some((t) => t === "")) throw invalid("a tag must not be empty");
  const trusted = (TRUSTED_ROLES as readonly string[]).includes(request.role);
  const approval = !trusted && config.farm.approval.includes(request.role);
  const job: NewJob = {
    file: request.file,
    owner: request.owner,
    priority,
    model: request.model?.trim() || null,
    tags,
    notes: request.notes ?? null,
    state: approval ? "pending_approval" : "queued",
  };
  return Array.from({ length: quantity }, () => job);
}

/** CONFLICT for a print started at the printer that no operator took over: Ferry only watches it. */
export function assertControllable(job: Job): void {
  if (
    job.origin === "printer" &&
    job.takenOverBy === null &&
    !["printed", "completed", "cancelled", "failed"].includes(job.state)
  )
    throw new FerryError(
      "CONFLICT",
      `job ${job.id} was started at printer ${job.printer ?? "?"}; an operator must take it over before Ferry controls it`,
      { subject: job.id, retryable: false },
    );
}

/** CONFLICT naming the model and tags of the job that the printer lacks. */
export function assertFits(job: Job, printer: string, settings: PrinterSettings): void {
  const lacks = [
    ...(job.model !== null && job.model.toLowerCase() !== (settings.model ?? "").toLowerCase()
      ? [`model ${job.model}`]
      : []),
    ...job.tags
      .filter((t) => !settings.tags.some((has) => has.toLowerCase() === t.toLowerCase()))
      .map((t) => `tag ${t}`),
  ];
  if (lacks.length > 0)
    throw new FerryError("CONFLICT", `${printer} lacks ${lacks.join(", ")} that job ${job.id} needs`, {
      subject: printer,
      retryable: false,
    });
}

/** CONFLICT for a print started at the printer: Ferry has no file to print it again. */
export function assertReprintable(job: Job): void {
  if (job.origin === "printer" || job.file.id === null)
    throw new FerryError(
      "CONFLICT",
      `job ${job.id} was started at printer ${job.printer ?? "?"}; Ferry has no file to print it again`,
      { subject: job.id, retryable: false },
    );
}
