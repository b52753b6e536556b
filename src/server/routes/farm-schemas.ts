/**
 * What the farm's routes show (printers, jobs, files) and who sees which jobs.
 *
 * Jobs are private to user accounts: an account of the role `user` (and every token of it, whatever
 * the token's role) sees only its own jobs, and another's is "not found". Accounts of the roles
 * viewer (a wall display), operator and admin see every job; what they may change is their role's.
 * It goes by the account, not the token, so a user cannot see more through a viewer token.
 */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { Identity } from "../../auth/accounts.ts";
import { roleAllows } from "../../auth/roles.ts";
import { FerryError } from "../../core/errors.ts";
import type { PrinterView } from "../../farm/farm.ts";
import type { Job } from "../../farm/jobs.ts";
import { THUMBNAIL_CONTENT_TYPES, type LibraryFile } from "../../farm/library/index.ts";
import { JOB_STATES } from "../../farm/states.ts";
import { ACTIVITIES } from "../../printers/driver.ts";
import { HttpProblem } from "../problems.ts";
import { identityOf, isoTime } from "../route.ts";

/** True when the caller sees every job; false: only its own. */
export function seesAllJobs(identity: Identity): boolean {
  return identity.user.role !== "user";
}

/** The job when the caller may see it; NOT_FOUND (as for no such job) otherwise. */
export function visibleJob(request: FastifyRequest, job: Job): Job {
  const caller = identityOf(request);
  if (!seesAllJobs(caller) && job.owner !== caller.user.name)
    throw new FerryError("NOT_FOUND", `there is no job ${job.id}`, { subject: job.id, retryable: false });
  return job;
}

/** Operators act on any job; others only on their own (403 for a job they can see, else 404). */
export function ownJobOrOperator(request: FastifyRequest, job: Job, action: string): Job {
  const caller = identityOf(request);
  visibleJob(request, job);
  if (!roleAllows(caller.role, "operator") && job.owner !== caller.user.name)
    throw new HttpProblem(
      403,
      "forbidden",
      "Forbidden",
      `only operators ${action} another user's job; job ${job.id} is ${job.owner ?? "started at its printer"}'s`,
      { subject: job.id },
    );
  return job;
}

export const NAME = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    'letters, digits, "_", "." or "-", starting with a letter or digit',
  );
export const ID = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/, "an id: letters, digits, _ and -");
export const byId = z.strictObject({ id: ID });
export const byName = z.strictObject({ name: NAME });

const time = z.string().describe("ISO 8601");
const iso = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));

export const jobStateSchema = z.enum(JOB_STATES);

export const jobSchema = z
  .object({
    id: z.string(),
    orderId: z.string(),
    file: z.object({ id: z.string().nullable(), name: z.string(), sha256: z.string().nullable() }),
    owner: z.string().nullable().describe("null: a print started at the printer and adopted"),
    priority: z.number().int(),
    model: z.string().nullable(),
    tags: z.array(z.string()),
    notes: z.string().nullable(),
    state: jobStateSchema,
    printer: z.string().nullable(),
    origin: z.enum(["user", "printer"]),
    takenOverBy: z.string().nullable(),
    progress: z.number().nullable().describe("0..1 while printing"),
    remainingS: z.number().nullable(),
    reason: z.string().nullable().describe("the last state change's reason"),
    waiting: z.string().nullable().describe("why a queued job still waits"),
    uploadedAt: time.nullable(),
    startedAt: time.nullable(),
    finishedAt: time.nullable(),
    createdAt: time,
    updatedAt: time,
  })
  .meta({ id: "Job" });

export function jobView(job: Job, waiting?: string): z.output<typeof jobSchema> {
  return {
    id: job.id,
    orderId: job.orderId,
    file: job.file,
    owner: job.owner,
    priority: job.priority,
    model: job.model,
    tags: job.tags,
    notes: job.notes,
    state: job.state,
    printer: job.printer,
    origin: job.origin,
    takenOverBy: job.takenOverBy,
    progress: job.progress,
    remainingS: job.remainingS,
    reason: job.reason,
    waiting: job.state === "queued" ? (waiting ?? null) : null,
    uploadedAt: iso(job.uploadedAt),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    createdAt: isoTime(job.createdAt),
    updatedAt: isoTime(job.updatedAt),
  };
}

export const historySchema = z
  .object({
    seq: z.number().int(),
    from: jobStateSchema.nullable(),
    to: jobStateSchema,
    actor: z.string(),
    at: time,
    reason: z.string().nullable(),
  })
  .meta({ id: "JobHistoryEntry" });

export const orderSchema = z
  .object({
    id: z.string(),
    owner: z.string().nullable(),
    jobs: z.array(jobSchema),
  })
  .meta({ id: "Order" });

export const printerSchema = z
  .object({
    name: z.string(),
    type: z.string(),
    source: z
      .enum(["config", "api"])
      .describe("config: ferry.yaml (changed there); api: added through the API"),
    model: z.string().nullable(),
    tags: z.array(z.string()),
    autoClear: z.boolean(),
    cameraUrl: z.string().nullable(),
    connection: z.enum(["online", "offline", "auth_failed"]).nullable(),
    activity: z.enum(ACTIVITIES).nullable(),
    rawState: z.string().nullable(),
    offlineReason: z.string().nullable().describe("why it is offline or refuses Ferry's credentials"),
    temperatures: z.array(z.object({ name: z.string(), actual: z.number(), target: z.number().optional() })),
    heating: z.boolean(),
    observedAt: time.nullable(),
    job: jobSchema.nullable(),
    bedClear: z.boolean(),
    maintenance: z.object({ reason: z.string(), by: z.string().nullable(), at: time.nullable() }).nullable(),
    drivenBy: z.string().nullable().describe("the node whose worker drives it"),
    waiting: z.string().nullable(),
    lastError: z.string().nullable(),
  })
  .meta({ id: "Printer" });

export function printerView(
  view: PrinterView,
  source: "config" | "api",
  showJob: (job: Job) => boolean,
): z.output<typeof printerSchema> {
  return {
    name: view.name,
    type: view.kind,
    source,
    model: view.model,
    tags: view.tags,
    autoClear: view.autoClear,
    cameraUrl: view.cameraUrl,
    connection: view.connection,
    activity: view.activity,
    rawState: view.rawState,
    offlineReason: view.offlineReason,
    temperatures: view.temperatures,
    heating: view.heating,
    observedAt: iso(view.observedAt),
    job: view.job && showJob(view.job) ? jobView(view.job) : null,
    bedClear: view.bedClear,
    maintenance: view.maintenance && { ...view.maintenance, at: iso(view.maintenance.at) },
    drivenBy: view.drivenBy,
    waiting: view.waiting,
    lastError: view.lastError,
  };
}

export const fileSchema = z
  .object({
    id: z.string(),
    name: z.string().describe("the name it was first uploaded under"),
    sha256: z.string().describe("also the download's ETag"),
    size: z.number().int(),
    kind: z.enum(["gcode", "bgcode", "3mf"]),
    metadata: z
      .object({
        slicer: z.string().optional(),
        slicerVersion: z.string().optional(),
        printerModel: z.string().optional(),
        estimatedTimeS: z.number().optional(),
        filamentUsedMm: z.number().optional(),
        filamentUsedG: z.number().optional(),
        material: z.string().optional(),
        nozzleDiameterMm: z.number().optional(),
        layerHeightMm: z.number().optional(),
        title: z.string().optional(),
        notes: z.array(z.string()),
      })
      .nullable(),
    noMetadataReason: z.string().optional(),
    thumbnails: z.array(
      z.object({
        index: z.number().int(),
        format: z.enum(["png", "jpg", "qoi"]),
        contentType: z.string(),
        width: z.number().int(),
        height: z.number().int(),
        bytes: z.number().int(),
        url: z.string(),
      }),
    ),
    uploadedBy: z.string().nullable(),
    createdAt: time,
    url: z.string().describe("the download"),
  })
  .meta({ id: "LibraryFile" });

export const filePath = (id: string) => `/api/v1/files/${encodeURIComponent(id)}`;

export function fileView(file: LibraryFile): z.output<typeof fileSchema> {
  return {
    id: file.id,
    name: file.name,
    sha256: file.sha256,
    size: file.size,
    kind: file.kind,
    metadata: file.metadata,
    ...(file.noMetadataReason === undefined ? {} : { noMetadataReason: file.noMetadataReason }),
    thumbnails: file.thumbnails.map((t, index) => ({
      index,
      ...t,
      contentType: THUMBNAIL_CONTENT_TYPES[t.format],
      url: `${filePath(file.id)}/thumbnails/${index}`,
    })),
    uploadedBy: file.uploadedBy ?? null,
    createdAt: isoTime(file.createdAt),
    url: `${filePath(file.id)}/content`,
  };
}
