/**
 * The simulated printer behind the HTTP API: its state word, the current job (progress grows with
 * the injected clock while it prints), the one running transfer, its storages and injected faults.
 */
import { SimHttpError } from "./http-util.ts";
import { isPrintFile } from "./fat-names.ts";
import { isInside, SimStorage, type SimFile, type SimNode } from "./virtual-fs.ts";

export const PRUSALINK_STATES = [
  "IDLE",
  "BUSY",
  "PRINTING",
  "PAUSED",
  "FINISHED",
  "STOPPED",
  "ERROR",
  "ATTENTION",
  "READY",
] as const;
export type PrusaLinkState = (typeof PRUSALINK_STATES)[number];

export type JobState = "PRINTING" | "PAUSED" | "FINISHED" | "STOPPED" | "ERROR";

export interface SimJob {
  id: number;
  storage: SimStorage;
  file: SimFile;
  state: JobState;
  durationMs: number;
  /** Printing time accumulated before `since`. */
  printedMs: number;
  /** Clock value when the current printing stretch began (only while time runs). */
  since: number | undefined;
}

export interface SimTransfer {
  id: number;
  storage: SimStorage;
  /** Long path of the target file, relative to the storage root. */
  path: string;
  size: number;
  transferred: number;
  startedAt: number;
  toPrint: boolean;
}

export interface SimFault {
  /** Destroy the connection of the next upload once this many body bytes have arrived. */
  resetAfterBytes?: number;
  /** Answer this status to the next `count` API requests (before authentication). */
  status?: 500 | 503;
  /** How many requests get `status` (default 1). */
  count?: number;
}

export type PrinterModel = "MK4" | "MK3";

export const DEFAULT_PRINT_S = 600;

/** Printer states in which a new print may start. */
const READY_TO_PRINT: ReadonlySet<PrusaLinkState> = new Set(["IDLE", "READY", "FINISHED", "STOPPED"]);

export class VirtualPrinter {
  readonly model: PrinterModel;
  readonly storages: readonly SimStorage[];
  readonly clock: () => number;
  #state: PrusaLinkState = "IDLE";
  #job: SimJob | undefined;
  #nextJobId = 1;
  #nextTransferId = 1;
  transfer: SimTransfer | undefined;
  resetAfterBytes: number | undefined;
  failStatus: { status: 500 | 503; remaining: number } | undefined;
  /** Set while uploads are held: resolving it lets them take bytes again. */
  #uploadHold: PromiseWithResolvers<undefined> | undefined;

  constructor(model: PrinterModel, capacity: number, clock: () => number) {
    this.model = model;
    this.clock = clock;
    const now = Math.floor(clock() / 1000);
    this.storages =
      model === "MK4"
        ? [
            new SimStorage(
              { name: "usb", type: "USB", displayName: "usb", readOnly: false, capacity, shortNames: true },
              now,
            ),
          ]
        : [
            new SimStorage(
              {
                name: "local",
                type: "LOCAL",
                displayName: "PrusaLink gcodes",
                readOnly: false,
                capacity,
                shortNames: false,
              },
              now,
            ),
            new SimStorage(
              {
                name: "sdcard",
                type: "SDCARD",
                displayName: "SD Card",
                readOnly: true,
                capacity: 0,
                shortNames: false,
              },
              now,
            ),
          ];
  }

  /** The storage uploads go to by default (the first writable one). */
  get primary(): SimStorage {
    return this.storages.find((s) => !s.readOnly) ?? (this.storages[0] as SimStorage);
  }

  storage(name: string): SimStorage | undefined {
    return this.storages.find((s) => s.name === name.toLowerCase());
  }

  get state(): PrusaLinkState {
    this.#tick();
    return this.#state;
  }

  get job(): SimJob | undefined {
    this.#tick();
    return this.#job;
  }

  /** Milliseconds the current job has printed so far. */
  printedMs(job: SimJob): number {
    return job.printedMs + (job.since === undefined ? 0 : this.clock() - job.since);
  }

  #tick(): void {
    const job = this.#job;
    if (job?.state === "PRINTING" && job.since !== undefined && this.printedMs(job) >= job.durationMs) {
      job.printedMs = job.durationMs;
      job.since = undefined;
      job.state = "FINISHED";
      this.#state = "FINISHED";
    }
  }

  #active(): SimJob | undefined {
    const job = this.job;
    return job && (job.state === "PRINTING" || job.state === "PAUSED") ? job : undefined;
  }

  /** Stops the clock of the job (pause, attention, end). */
  #hold(job: SimJob): void {
    if (job.since !== undefined) job.printedMs = Math.min(job.durationMs, this.printedMs(job));
    job.since = undefined;
  }

  #run(job: SimJob): void {
    job.state = "PRINTING";
    job.since = this.clock();
    this.#state = "PRINTING";
  }

  #end(job: SimJob, state: "FINISHED" | "STOPPED" | "ERROR"): void {
    this.#hold(job);
    if (state === "FINISHED") job.printedMs = job.durationMs;
    job.state = state;
  }

  /** Whether `node` is, or contains, the file of the running (or paused) job. */
  isPrinted(node: SimNode): boolean {
    const job = this.#active();
    return job !== undefined && isInside(job.file, node);
  }

  /** Whether a new print may start now. */
  readyToPrint(): boolean {
    return this.#active() === undefined && READY_TO_PRINT.has(this.state);
  }

  startPrint(storage: SimStorage, node: SimNode, durationS = DEFAULT_PRINT_S): SimJob {
    if (node.kind !== "file" || !isPrintFile(node.name)) {
      throw new SimHttpError(409, "Not printable", `${node.name} is not a print file`);
    }
    const state = this.state;
    if (!this.readyToPrint()) {
      throw new SimHttpError(409, "Printer is busy", `cannot start a print while the printer is ${state}`);
    }
    const job: SimJob = {
      id: this.#nextJobId++,
      storage,
      file: node,
      state: "PRINTING",
      durationMs: Math.max(1, durationS * 1000),
      printedMs: 0,
      since: undefined,
    };
    this.#job = job;
    this.#run(job);
    return job;
  }

  #jobById(id: number): SimJob {
    const job = this.job;
    if (!job || job.id !== id) throw new SimHttpError(404, "Not Found", `no job ${id}`);
    return job;
  }

  pause(id: number): void {
    const job = this.#jobById(id);
    if (job.state !== "PRINTING" || this.#state !== "PRINTING") {
      throw new SimHttpError(409, "Conflict", `job ${id} is not printing`);
    }
    this.#hold(job);
    job.state = "PAUSED";
    this.#state = "PAUSED";
  }

  resume(id: number): void {
    const job = this.#jobById(id);
    if (job.state !== "PAUSED") throw new SimHttpError(409, "Conflict", `job ${id} is not paused`);
    this.#run(job);
  }

  stop(id: number): void {
    const job = this.#jobById(id);
    if (job.state !== "PRINTING" && job.state !== "PAUSED") {
      throw new SimHttpError(409, "Conflict", `job ${id} has already ended`);
    }
    this.#end(job, "STOPPED");
    this.#state = "STOPPED";
  }

  /**
   * Forces the state word, as the printer's own screen or a fault would. IDLE, READY and BUSY
   * stop and forget a running job; FINISHED, STOPPED and ERROR end it; ATTENTION halts its clock;
   * PAUSED and PRINTING need a job (start one with startPrint).
   */
  setState(state: PrusaLinkState): void {
    const job = this.#active();
    switch (state) {
      case "IDLE":
      case "READY":
      case "BUSY":
        this.#job = undefined;
        break;
      case "FINISHED":
      case "STOPPED":
      case "ERROR":
        if (job) this.#end(job, state);
        break;
      case "ATTENTION":
        if (job) this.#hold(job);
        break;
      case "PAUSED":
        if (!job) throw new SimHttpError(409, "Conflict", "PAUSED needs a job: start a print first");
        this.#hold(job);
        job.state = "PAUSED";
        break;
      case "PRINTING":
        if (!job) throw new SimHttpError(409, "Conflict", "PRINTING needs a job: start a print first");
        this.#run(job);
        break;
    }
    this.#state = state;
  }

  beginTransfer(storage: SimStorage, path: string, size: number, toPrint: boolean): SimTransfer {
    if (this.transfer) throw new SimHttpError(409, "Transfer in progress", "another transfer is running");
    this.transfer = {
      id: this.#nextTransferId++,
      storage,
      path,
      size,
      transferred: 0,
      startedAt: this.clock(),
      toPrint,
    };
    return this.transfer;
  }

  endTransfer(transfer: SimTransfer): void {
    if (this.transfer === transfer) this.transfer = undefined;
  }

  /**
   * Holds uploads: a running one stops taking bytes after its current chunk, a new one starts (it
   * shows as the transfer) and takes none, until `releaseUploads`. A gate for tests that need an
   * upload in progress for as long as they like, however slow the machine.
   */
  holdUploads(): void {
    this.#uploadHold ??= Promise.withResolvers<undefined>();
  }

  releaseUploads(): void {
    this.#uploadHold?.resolve(undefined);
    this.#uploadHold = undefined;
  }

  get uploadsHeld(): boolean {
    return this.#uploadHold !== undefined;
  }

  /** Resolves when an upload may take its next chunk: at once, or on release. */
  async uploadGate(): Promise<void> {
    while (this.#uploadHold) await this.#uploadHold.promise;
  }

  injectFault(fault: SimFault): void {
    if (fault.resetAfterBytes !== undefined) this.resetAfterBytes = fault.resetAfterBytes;
    if (fault.status !== undefined) this.failStatus = { status: fault.status, remaining: fault.count ?? 1 };
  }

  clearFaults(): void {
    this.resetAfterBytes = undefined;
    this.failStatus = undefined;
  }

  /** The status to fail the next API request with, if a fault asks for one (and counts it). */
  takeFailStatus(): 500 | 503 | undefined {
    const fault = this.failStatus;
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining <= 0) this.failStatus = undefined;
    return fault.status;
  }

  /** Nozzle and bed temperatures that look like the state (hot while a job is on). */
  temperatures(): { nozzle: [number, number]; bed: [number, number] } {
    const hot = this.#active() !== undefined || this.#state === "BUSY";
    return hot ? { nozzle: [214.8, 215], bed: [59.9, 60] } : { nozzle: [24.6, 0], bed: [23.9, 0] };
  }
}
