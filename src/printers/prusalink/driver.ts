/**
 * A PrusaLink printer (MK4/XL/MINI with Buddy firmware, MK3 with Prusa-Link) as a PrinterDriver:
 * one normalized snapshot from /api/v1/status and /api/v1/job, print control, and its files as a
 * StorageAdapter sharing the same HTTP client (and Digest nonce).
 */
import { FerryError, isFerryError } from "../../core/errors.ts";
import { joinPath, pathKey } from "../../core/paths.ts";
import type { AdapterContext } from "../../storage/adapter.ts";
import {
  definePrinterDriver,
  pollEvents,
  unreachableSnapshot,
  type Activity,
  type EventsOptions,
  type JobSnapshot,
  type PrinterDriver,
  type PrinterEvent,
  type PrinterSnapshot,
  type Temperature,
} from "../driver.ts";
import { jobSchema, statusSchema, type WireStatus } from "./api-types.ts";
import type { PrusaLinkClient } from "./client.ts";
import { createClient, PrusaLinkStorage, type ClientTuning } from "./storage.ts";
import { KIND, type PrusaLinkOptions, prusalinkKind } from "./options.ts";

type Signal = { signal?: AbortSignal };

const ACTIVITY: Readonly<Record<string, Activity>> = {
  IDLE: "idle",
  READY: "idle",
  BUSY: "busy",
  PRINTING: "printing",
  PAUSED: "paused",
  FINISHED: "finished",
  STOPPED: "stopped",
  ERROR: "error",
  ATTENTION: "attention",
};

/** A state word Ferry does not know is treated as busy: never quiet, so files are left alone. */
export function activityOf(state: string): Activity {
  return ACTIVITY[state.toUpperCase()] ?? "busy";
}

/** The fields of a job's `file` that locate it. */
export interface JobFileRef {
  name: string;
  path: string;
  display_name?: string | undefined;
  display_path?: string | undefined;
}

/**
 * The printed file as a path of the storage adapter (long names, relative to the storage root),
 * or undefined when it lies on another storage. `path` and `display_path` name the file's folder
 * with the storage first ("/usb/SUBDIR~1", "/usb/Sub dir"; the MK3 shows "/PrusaLink gcodes");
 * a firmware that puts the file name at their end is understood too.
 */
export function jobFilePath(file: JobFileRef, storage: string): string | undefined {
  const shortParts = file.path.split("/").filter((p) => p !== "");
  if (shortParts.length > 0 && shortParts[0]?.toLowerCase() !== storage.toLowerCase()) return undefined;
  const name = file.display_name ?? file.name;
  const folders = (file.display_path ?? file.path)
    .split("/")
    .filter((p) => p !== "")
    .slice(1);
  const last = folders.at(-1);
  if (last !== undefined && [name, file.name].some((n) => pathKey(n, true) === pathKey(last, true)))
    folders.pop();
  return joinPath(...folders, name);
}

function temperatures(status: WireStatus): Temperature[] {
  const out: Temperature[] = [];
  const { printer } = status;
  const add = (name: Temperature["name"], actual: number | undefined, target: number | undefined) => {
    if (actual === undefined) return;
    out.push(target === undefined ? { name, actual } : { name, actual, target });
  };
  add("tool0", printer.temp_nozzle, printer.target_nozzle);
  add("bed", printer.temp_bed, printer.target_bed);
  return out;
}

export class PrusaLinkDriver implements PrinterDriver {
  readonly kind = KIND;
  readonly name: string;
  readonly capabilities = prusalinkKind.capabilities;
  readonly #client: PrusaLinkClient;
  readonly #storage: PrusaLinkStorage;
  readonly #clock: () => number;

  constructor(client: PrusaLinkClient, options: PrusaLinkOptions, clock: () => number = Date.now) {
    this.#client = client;
    this.name = client.printer;
    this.#clock = clock;
    this.#storage = new PrusaLinkStorage(client, { storage: options.storage, ownsClient: false });
  }

  async snapshot(options: Signal = {}): Promise<PrinterSnapshot> {
    const call = { signal: options.signal, operation: "status" };
    try {
      const status = await this.#client.getJson("/api/v1/status", statusSchema, call);
      if (!status) throw new FerryError("PROTOCOL", `${this.name}: status: empty reply`);
      const snapshot: PrinterSnapshot = {
        connection: "online",
        activity: activityOf(status.printer.state),
        rawState: status.printer.state,
        temperatures: temperatures(status),
        observedAt: this.#clock(),
      };
      if (status.job) {
        const job = await this.#client.getJson("/api/v1/job", jobSchema, { ...call, operation: "job" });
        const merged: JobSnapshot = {};
        const id = job?.id ?? status.job.id;
        if (id !== undefined) merged.id = String(id);
        const progress = job?.progress ?? status.job.progress;
        if (progress !== undefined) merged.progress = Math.min(1, Math.max(0, progress / 100));
        const elapsed = job?.time_printing ?? status.job.time_printing;
        if (elapsed !== undefined) {
          merged.elapsedS = elapsed;
          // PrusaLink gives no start time: printing time back from now (pauses make it later).
          merged.startedAt = snapshot.observedAt - elapsed * 1000;
        }
        const remaining = job?.time_remaining ?? status.job.time_remaining;
        if (remaining !== undefined) merged.remainingS = remaining;
        if (job?.file) {
          const file = jobFilePath(job.file, await this.#storageName(options));
          if (file !== undefined) merged.file = file;
        }
        snapshot.job = merged;
      }
      return snapshot;
    } catch (error) {
      // Unreachable, failing or refusing us: report it instead of throwing, as the contract asks.
      return unreachableSnapshot(error, this.#clock());
    }
  }

  /** The adapter's storage, or "" when the printer has none to offer (no USB stick): the job is shown without its file then. */
  async #storageName(options: Signal): Promise<string> {
    try {
      return await this.#storage.storageName(options);
    } catch (error) {
      if (isFerryError(error, "NOT_FOUND")) return "";
      throw error;
    }
  }

  events(options: EventsOptions = {}): AsyncIterable<PrinterEvent> {
    return pollEvents((opts) => this.snapshot(opts), options);
  }

  async startJob(path: string, options: Signal = {}): Promise<void> {
    const apiPath = await this.#storage.apiPath(path, options);
    const res = await this.#client.call("POST", apiPath, [200, 204], {
      signal: options.signal,
      subject: path,
      operation: "start print",
    });
    await res.body.dump();
  }

  /**
   * The running job's id and the printer's state word, from /api/v1/status (the firmware's own
   * source of the id that /api/v1/job/{id} takes).
   */
  async #current(operation: string, options: Signal): Promise<{ id: number | undefined; state: string }> {
    const status = await this.#client.getJson("/api/v1/status", statusSchema, {
      signal: options.signal,
      operation,
    });
    if (!status) throw new FerryError("PROTOCOL", `${this.name}: ${operation}: empty status reply`);
    return { id: status.job?.id ?? undefined, state: status.printer.state.toUpperCase() };
  }

  async #jobAction(
    method: string,
    suffix: string,
    operation: string,
    states: readonly string[],
    options: Signal,
  ): Promise<void> {
    const { id, state } = await this.#current(operation, options);
    if (id === undefined || !states.includes(state)) {
      throw new FerryError(
        "CONFLICT",
        `${this.name}: ${operation}: the printer is ${state}${id === undefined ? ", no job" : ""}`,
      );
    }
    const res = await this.#client.send(method, `/api/v1/job/${id}${suffix}`, {
      signal: options.signal,
      operation,
    });
    // 409: the job is not in a state for it (pausing a paused job): the caller's mistake, not a busy printer.
    const conflict = res.status === 409 ? "CONFLICT" : undefined;
    await this.#client.check(res, [200, 204], { printer: this.name, operation }, conflict);
    await res.body.dump();
  }

  /** CONFLICT unless a job prints. */
  pause(options: Signal = {}): Promise<void> {
    return this.#jobAction("PUT", "/pause", "pause", ["PRINTING"], options);
  }

  /** CONFLICT unless a job is paused or waits for attention (a filament runout). */
  resume(options: Signal = {}): Promise<void> {
    return this.#jobAction("PUT", "/resume", "resume", ["PAUSED", "ATTENTION"], options);
  }

  /** Stops the running job; CONFLICT when none runs. */
  cancel(options: Signal = {}): Promise<void> {
    return this.#jobAction("DELETE", "", "cancel", ["PRINTING", "PAUSED", "ATTENTION"], options);
  }

  storage(): PrusaLinkStorage {
    return this.#storage;
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** Opens the driver (tests pass `tuning` for an injected clock). */
export function openPrusaLinkDriver(
  options: PrusaLinkOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
): PrusaLinkDriver {
  return new PrusaLinkDriver(createClient(options, context, tuning), options, tuning.clock);
}

export const prusalinkDriver = definePrinterDriver<PrusaLinkOptions>({
  ...prusalinkKind,
  create: (options, context) => openPrusaLinkDriver(options, context),
});
