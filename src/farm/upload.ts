/**
 * A job's file to its printer: an ordinary durable task on the one runner, sent through the one
 * transfer path (storage/transfer.ts) into the printer's storage adapter, checkpointed and resumed
 * like any sync upload, and serialized on the printer's transfer queue with sync work. When the
 * file is in, the job records it and its worker asks the printer to print it.
 */
import { FerryError, isFerryError } from "../core/errors.ts";
import { FARM_FOLDER } from "../printers/driver.ts";
import type { Clock } from "../core/clock.ts";
import type { Devices } from "../devices/devices.ts";
import { deviceQueues, targetQueue } from "../devices/queues.ts";
import type { StorageAdapter, UploadToken } from "../storage/adapter.ts";
import { sendFile } from "../storage/transfer.ts";
import type { TaskLabel } from "../tasks/events.ts";
import type { Task, TaskQueue } from "../tasks/queue.ts";
import type { TaskRunner } from "../tasks/runner.ts";
import type { Job, JobFile, Jobs } from "./jobs.ts";
import type { UploadStatus } from "./reconciler.ts";

export const UPLOAD_TASK = "farm.upload";
/** The scope of the farm's tasks (Task.scope). */
export const FARM_SCOPE = "farm";
/** Where jobs' files go on a printer. */
/** A running upload checks this often whether its job was cancelled. */
const CANCEL_CHECK_MS = 1_000;

export interface UploadPayload {
  job: string;
  printer: string;
  /** The file on the printer (a path of its storage adapter). */
  path: string;
  file: JobFile;
}

interface UploadCheckpoint {
  bytes: number;
  upload?: UploadToken;
}

/** Where the farm reads a job's file from: the file library, by the job's file id. */
export interface JobFiles {
  open(file: JobFile, signal?: AbortSignal): Promise<{ storage: StorageAdapter; path: string; size: number }>;
}

/** A build without a file library: every upload says so. */
export const noJobFiles: JobFiles = {
  open: (file) =>
    Promise.reject(
      new FerryError("UNSUPPORTED", `there is no file library to read ${file.name} from`, {
        retryable: false,
      }),
    ),
};

/**
 * The job's file on its printer for an upload begun at `at`: the farm's folder and the file's own
 * name, marked with that time (base 36) before the extension. A printer names only the file it
 * prints, so the file must name the attempt: after a kill -9 between asking for a start and the
 * printer getting it, the print of another job (or an earlier attempt) of the same file must never
 * pass for this one. `pla-part.gcode` becomes `ferry/pla-part.mxbkk3b8.gcode`.
 */
export function printerPathOf(job: Job, at: number): string {
  const name =
    job.file.name
      .split("/")
      .filter((part) => part !== "")
      .at(-1) ?? job.id;
  const dot = name.lastIndexOf(".");
  const [stem, extension] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  return `${FARM_FOLDER}/${stem}.${at.toString(36)}${extension}`;
}

/** The path the job's upload goes to (begin-upload records it before the upload is queued). */
export function printerPathOfUpload(job: Job): string {
  if (job.printerPath === null)
    throw new FerryError("CONFLICT", `job ${job.id} is ${job.state} without a file on its printer`, {
      retryable: false,
    });
  return job.printerPath;
}

/**
 * Removes the farm folder's files other than `keep`: the files of jobs that ended. One job holds a
 * printer at a time, so nothing else there is needed; a file the printer still shows (a print
 * started again at its screen) is refused by the printer and stays until a later upload.
 */
async function clearFarmFolder(target: StorageAdapter, keep: string, signal: AbortSignal): Promise<void> {
  const old: string[] = [];
  try {
    for await (const entry of target.list(FARM_FOLDER, { signal }))
      if (entry.type === "file" && entry.path !== keep) old.push(entry.path);
  } catch (error) {
    if (isFerryError(error, "NOT_FOUND")) return;
    throw error;
  }
  for (const path of old) await target.remove(path, { signal }).catch(() => undefined);
}

/** The upload task's dedupe key. Text PostgreSQL can store (no NUL); job ids hold no ":". */
export function uploadKey(job: string): string {
  return `${UPLOAD_TASK}:${job}`;
}

export interface UploadContext {
  jobs: Jobs;
  devices: Devices;
  queue: TaskQueue;
  files: JobFiles;
  clock: Clock;
  /** The upload is in: wake the printer's worker. */
  uploaded(printer: string): void;
}

function queueOf(devices: Devices, printer: string, path: string): string {
  const slots = devices.slots({ type: "device", device: printer, path: "", label: printer });
  return targetQueue(printer, slots, path);
}

/** Queues the job's upload (kept when one is queued already). */
export async function enqueueUpload(
  ctx: UploadContext,
  job: Job,
  printer: string,
  path: string,
): Promise<void> {
  const payload: UploadPayload = { job: job.id, printer, path, file: job.file };
  await ctx.queue.enqueue({
    kind: UPLOAD_TASK,
    key: uploadKey(job.id),
    queue: queueOf(ctx.devices, printer, path),
    payload,
    scope: FARM_SCOPE,
  });
}

/** The job's upload task on its printer's queues, newest first. */
async function uploadTasks(ctx: UploadContext, job: string, printer: string): Promise<Task[]> {
  const tasks = await ctx.queue.list({ queues: deviceQueues(printer), scope: FARM_SCOPE, limit: 1000 });
  return tasks.filter((t) => t.key === uploadKey(job)).sort((a, b) => b.createdAt - a.createdAt);
}

export async function uploadStatus(
  ctx: UploadContext,
  job: Job,
): Promise<{ status: UploadStatus; error: string | null }> {
  if (job.printer === null) return { status: "none", error: null };
  const tasks = await uploadTasks(ctx, job.id, job.printer);
  const running = tasks.find((t) => t.status === "running");
  if (running) return { status: "running", error: null };
  if (tasks.some((t) => t.status === "queued")) return { status: "queued", error: null };
  const dead = tasks.find((t) => t.status === "dead");
  if (dead) return { status: "dead", error: dead.lastError };
  return { status: "none", error: null };
}

/** Deletes the job's queued upload (a running one stops by itself once it sees the job cancelled). */
export async function dropUpload(ctx: UploadContext, job: Job): Promise<void> {
  if (job.printer === null) return;
  const queued = (await uploadTasks(ctx, job.id, job.printer)).filter((t) => t.status === "queued");
  if (queued.length > 0) await ctx.queue.cancel(queued.map((t) => t.id));
}

const describeUpload = (p: UploadPayload): TaskLabel => ({
  what: `upload ${p.file.name} to ${p.printer} (job ${p.job})`,
  target: p.printer,
  path: p.path,
});

export function registerUploadHandler(runner: TaskRunner, ctx: UploadContext): void {
  runner.register<UploadPayload, UploadCheckpoint>(UPLOAD_TASK, {
    describe: describeUpload,
    run: async (task, run) => {
      const p = task.payload;
      const job = await ctx.jobs.get(p.job);
      if (job?.state !== "uploading" || job.printer !== p.printer)
        return { bytes: 0, skipped: `the job is ${job?.state ?? "gone"}` };
      if (job.uploadedAt !== null) return { bytes: 0, skipped: "already uploaded" };
      const source = await ctx.files.open(job.file, run.signal);
      const target = ctx.devices.storage(p.printer);
      await clearFarmFolder(target, p.path, run.signal);
      // A job cancelled meanwhile stops its upload: nothing waits for a file nobody will print.
      const cancelled = new AbortController();
      const signal = AbortSignal.any([run.signal, cancelled.signal]);
      const stopped = () => signal.aborted;
      const watching = (async () => {
        while (!stopped()) {
          await ctx.clock.sleep(CANCEL_CHECK_MS, signal).catch(() => undefined);
          if (stopped()) return;
          const now = await ctx.jobs.get(p.job).catch(() => undefined);
          if (now !== undefined && now.state !== "uploading")
            cancelled.abort(new FerryError("ABORTED", `job is ${now.state}`));
        }
      })();
      let resumedAt = 0;
      try {
        await sendFile(
          source.storage,
          target,
          { path: source.path, targetPath: p.path, size: source.size },
          {
            signal,
            onProgress: (bytes) => run.progress(bytes),
            ...(run.checkpoint?.upload ? { resume: run.checkpoint.upload } : {}),
            keep: (kept, now) => {
              const checkpoint = { bytes: kept.bytes, upload: kept.token };
              if (!now) return run.progress(kept.bytes, checkpoint);
              resumedAt = kept.bytes;
              return run.save(checkpoint);
            },
          },
        );
      } catch (error) {
        if (cancelled.signal.aborted && !run.signal.aborted)
          return { bytes: 0, skipped: "the job was cancelled during its upload" };
        throw error;
      } finally {
        cancelled.abort();
        await watching;
      }
      await ctx.jobs.update(p.job, "uploading", { uploadedAt: ctx.clock.now() });
      ctx.uploaded(p.printer);
      return { bytes: source.size - resumedAt };
    },
  });
}
