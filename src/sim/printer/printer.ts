/**
 * The one virtual printer behind every simulator face (PrusaLink, OctoPrint, Moonraker): what it
 * is doing (the contract's activities), the job (its duration from the G-code, progress from the
 * injected clock and the speed factor), heaters that approach their targets, its storages, the one
 * running transfer, injected faults (runout, error, disconnect, HTTP failures) and upload holds.
 * Faces map all this to their vendor's words; see README.md.
 */
import { SimHttpError } from "../http-error.ts";
import { isInside, type SimFile, type SimNode, type SimStorage } from "./files.ts";
import { isPrintFile, readGcode } from "../../core/gcode.ts";

export const SIM_ACTIVITIES = [
  "idle",
  "busy",
  "printing",
  "paused",
  "finished",
  "stopped",
  "error",
  "attention",
] as const;
/** The contract's activities (src/printers/driver.ts), which faces map to their vendor's words. */
export type SimActivity = (typeof SIM_ACTIVITIES)[number];

export type SimJobState = "printing" | "paused" | "finished" | "stopped" | "error";

/** A print without an estimate in its G-code takes this long (at speed 1). */
export const DEFAULT_PRINT_S = 600;
/** Room temperature, where heaters start and cool back to. */
export const AMBIENT_C = 24;
/** Targets of a print whose G-code sets none. */
export const DEFAULT_TOOL_C = 215;
export const DEFAULT_BED_C = 60;

export interface SimJob {
  /** The printer's job id: 1, 2, … */
  id: number;
  storage: SimStorage;
  file: SimFile;
  state: SimJobState;
  /** The print's length in printer time (the G-code's estimate): at speed 1, in ms. */
  estimateMs: number;
  /** Clock (ms) when it started. */
  startedAt: number;
  /** Printer time printed before `since`. */
  printedMs: number;
  /** Clock time spent printing before `since` (pauses excluded). */
  runMs: number;
  /** Clock value when the current printing stretch began (only while it prints). */
  since: number | undefined;
}

/** A job's progress as the clock has moved it. */
export interface SimJobTimes {
  /** 0..1 */
  progress: number;
  /** Clock ms spent printing (pauses excluded). */
  elapsedMs: number;
  /** Clock ms left at the current speed. */
  remainingMs: number;
}

export interface SimTransfer {
  id: number;
  storage: SimStorage;
  /** Path of the target file (names, not aliases), relative to the storage root. */
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

export type SimHeaterName = "tool0" | "bed" | "chamber";

export interface SimTemperature {
  name: SimHeaterName;
  /** °C, rounded to 0.1 */
  actual: number;
  /** °C; 0 is off. */
  target: number;
}

interface Heater {
  name: SimHeaterName;
  target: number;
  /** Temperature at `at` (clock ms). */
  from: number;
  at: number;
  /** Time constant of the first-order approach, in printer time (ms at speed 1). */
  tauMs: number;
}

/** How fast each heater closes on its target (63 % per time constant; ~95 % after three). */
const TAU_MS: Readonly<Record<SimHeaterName, number>> = { tool0: 40_000, bed: 90_000, chamber: 300_000 };

export interface VirtualPrinterOptions {
  /** Its storages; the first writable one is `primary`. At least one. */
  storages: readonly SimStorage[];
  /** ms since the epoch (default Date.now): drives jobs, heaters and timestamps. */
  clock?: () => number;
  /** Printer time runs this many times faster than the clock (default 1): prints and heating. */
  speed?: number;
  /** The model's name, for faces that show it. */
  model?: string;
  /** Has a heated chamber (default false). */
  chamber?: boolean;
}

export type PrinterListener = () => void;

export class VirtualPrinter {
  readonly model: string;
  readonly storages: readonly SimStorage[];
  readonly clock: () => number;
  #speed: number;
  #activity: SimActivity = "idle";
  /** A face's own word for the current activity (PrusaLink's READY is idle); dropped when the activity changes. */
  #word: string | undefined;
  /** Why the printer is in error or needs attention. */
  #message: string | undefined;
  #connected = true;
  #job: SimJob | undefined;
  #nextJobId = 1;
  #nextTransferId = 1;
  readonly #heaters: Heater[];
  readonly #listeners = new Set<PrinterListener>();
  transfer: SimTransfer | undefined;
  resetAfterBytes: number | undefined;
  failStatus: { status: 500 | 503; remaining: number } | undefined;
  /** Set while uploads are held: resolving it lets them take bytes again. */
  #uploadHold: PromiseWithResolvers<undefined> | undefined;

  constructor(options: VirtualPrinterOptions) {
    if (options.storages.length === 0) throw new Error("a virtual printer needs at least one storage");
    this.storages = options.storages;
    this.clock = options.clock ?? Date.now;
    this.model = options.model ?? "virtual";
    this.#speed = checkSpeed(options.speed ?? 1);
    const now = this.clock();
    const names: SimHeaterName[] = options.chamber === true ? ["tool0", "bed", "chamber"] : ["tool0", "bed"];
    this.#heaters = names.map((name) => ({ name, target: 0, from: AMBIENT_C, at: now, tauMs: TAU_MS[name] }));
  }

  /** The storage uploads go to by default (the first writable one). */
  get primary(): SimStorage {
    return this.storages.find((s) => !s.readOnly) ?? (this.storages[0] as SimStorage);
  }

  /** A storage by name, case-insensitively. */
  storage(name: string): SimStorage | undefined {
    return this.storages.find((s) => s.name === name.toLowerCase());
  }

  // ---- observing ----

  get activity(): SimActivity {
    this.tick();
    return this.#activity;
  }

  /** The face's word set with the current activity, if it is still current. */
  get word(): string | undefined {
    this.tick();
    return this.#word;
  }

  /** Why the printer is in error or needs attention ("Filament runout"), else undefined. */
  get message(): string | undefined {
    this.tick();
    return this.#message;
  }

  /** The current or last job (until the printer is set idle or busy, or a new print starts). */
  get job(): SimJob | undefined {
    this.tick();
    return this.#job;
  }

  /** false after `disconnect()`: the printer does not answer (faces decide what that looks like). */
  get connected(): boolean {
    return this.#connected;
  }

  get speed(): number {
    return this.#speed;
  }

  /** Printer time printed so far by `job`. */
  #printed(job: SimJob, now = this.clock()): number {
    return job.printedMs + (job.since === undefined ? 0 : (now - job.since) * this.#speed);
  }

  times(job: SimJob): SimJobTimes {
    const now = this.clock();
    const printed = Math.min(job.estimateMs, this.#printed(job, now));
    return {
      progress: job.estimateMs <= 0 ? 1 : printed / job.estimateMs,
      elapsedMs: job.runMs + (job.since === undefined ? 0 : now - job.since),
      remainingMs: Math.max(0, (job.estimateMs - printed) / this.#speed),
    };
  }

  temperatures(): SimTemperature[] {
    const now = this.clock();
    return this.#heaters.map((h) => ({
      name: h.name,
      actual: Math.round(this.#heat(h, now) * 10) / 10,
      target: h.target,
    }));
  }

  #heat(heater: Heater, now: number): number {
    const goal = heater.target > 0 ? heater.target : AMBIENT_C;
    const t = Math.max(0, now - heater.at) * this.#speed;
    return goal + (heater.from - goal) * Math.exp(-t / heater.tauMs);
  }

  /** Called after every change (a face that pushes changes listens); returns the unsubscribe. */
  onChange(listener: PrinterListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /**
   * Lets the clock act: a print whose time is up finishes. Every getter calls it; a face that
   * pushes changes calls it on its own interval to notice a print finishing.
   */
  tick(): void {
    const job = this.#job;
    if (job?.state !== "printing" || job.since === undefined) return;
    if (this.#printed(job) < job.estimateMs) return;
    // It finished when its printer time ran out, not when we looked.
    const end = job.since + (job.estimateMs - job.printedMs) / this.#speed;
    job.runMs += end - job.since;
    job.printedMs = job.estimateMs;
    job.since = undefined;
    job.state = "finished";
    this.#setActivity("finished");
    this.#coolDown(end);
    this.#changed();
  }

  // ---- jobs ----

  #active(): SimJob | undefined {
    const job = this.job;
    return job && (job.state === "printing" || job.state === "paused") ? job : undefined;
  }

  /** Whether `node` is, or contains, the file of the running (or paused) job. */
  isPrinted(node: SimNode): boolean {
    const job = this.#active();
    return job !== undefined && isInside(job.file, node);
  }

  /** Whether a new print may start now. */
  readyToPrint(): boolean {
    const activity = this.activity;
    return (
      this.#active() === undefined &&
      (activity === "idle" || activity === "finished" || activity === "stopped")
    );
  }

  /**
   * Starts printing `node` of `storage`, as a face's API or the printer's own screen does. Its
   * length is `durationS` when given, else the G-code's estimate, else DEFAULT_PRINT_S, in printer
   * time (a 600 s print takes 6 s at speed 100). 409 when the printer cannot print now.
   */
  startPrint(storage: SimStorage, node: SimNode, durationS?: number): SimJob {
    if (node.kind !== "file" || !isPrintFile(node.name)) {
      throw new SimHttpError(409, "Not printable", `${node.name} is not a print file`);
    }
    if (!this.readyToPrint()) {
      throw new SimHttpError(
        409,
        "Printer is busy",
        `cannot start a print while the printer is ${this.activity}`,
      );
    }
    const facts = readGcode(node.content);
    const seconds = durationS ?? facts.estimatedS ?? DEFAULT_PRINT_S;
    const now = this.clock();
    const job: SimJob = {
      id: this.#nextJobId++,
      storage,
      file: node,
      state: "printing",
      estimateMs: Math.max(1, seconds * 1000),
      startedAt: now,
      printedMs: 0,
      runMs: 0,
      since: undefined,
    };
    this.#job = job;
    this.#run(job);
    this.#setTarget("tool0", facts.toolTarget ?? DEFAULT_TOOL_C, now);
    this.#setTarget("bed", facts.bedTarget ?? DEFAULT_BED_C, now);
    this.#changed();
    return job;
  }

  /** Stops the clock of the job (pause, attention, end). */
  #hold(job: SimJob): void {
    if (job.since !== undefined) {
      const now = this.clock();
      job.printedMs = Math.min(job.estimateMs, this.#printed(job, now));
      job.runMs += now - job.since;
    }
    job.since = undefined;
  }

  #run(job: SimJob): void {
    job.state = "printing";
    job.since ??= this.clock();
    this.#setActivity("printing");
  }

  #end(job: SimJob, state: "finished" | "stopped" | "error"): void {
    this.#hold(job);
    if (state === "finished") job.printedMs = job.estimateMs;
    job.state = state;
    this.#coolDown(this.clock());
  }

  #setActivity(activity: SimActivity, word?: string, message?: string): void {
    this.#activity = activity;
    this.#word = word;
    this.#message = message;
  }

  /** 409 unless a job prints. */
  pause(): void {
    const job = this.job;
    if (job?.state !== "printing" || this.#activity !== "printing") {
      throw new SimHttpError(409, "Conflict", "nothing is printing");
    }
    this.#hold(job);
    job.state = "paused";
    this.#setActivity("paused");
    this.#changed();
  }

  /** Goes on printing after a pause, or after the attention a runout asked for. 409 otherwise. */
  resume(): void {
    const job = this.#active();
    const activity = this.#activity;
    if (!job || !(activity === "paused" || activity === "attention")) {
      throw new SimHttpError(409, "Conflict", "nothing is paused");
    }
    this.#run(job);
    this.#changed();
  }

  /** Stops the running or paused job (→ stopped). 409 when none runs. */
  cancel(): void {
    const job = this.#active();
    if (!job) throw new SimHttpError(409, "Conflict", "no job is running");
    this.#end(job, "stopped");
    this.#setActivity("stopped");
    this.#changed();
  }

  // ---- faults ----

  /** The filament ran out: a printing job halts and the printer asks for attention until resumed. */
  runout(): void {
    const job = this.job;
    if (job?.state !== "printing" || this.#activity !== "printing") {
      throw new SimHttpError(409, "Conflict", "a runout needs a print in progress");
    }
    this.#hold(job);
    this.#setActivity("attention", undefined, "Filament runout");
    this.#changed();
  }

  /** The printer fails (a thermal runaway, a crash): a job ends in error; it stays so until set idle. */
  fail(message = "Printer error"): void {
    const job = this.#active();
    if (job) this.#end(job, "error");
    this.#setActivity("error", undefined, message);
    this.#changed();
  }

  /** The printer stops answering (network or serial link gone); its job prints on. */
  disconnect(): void {
    this.#connected = false;
    this.#changed();
  }

  reconnect(): void {
    this.#connected = true;
    this.#changed();
  }

  /**
   * Forces the activity, as the printer's own screen or a fault would. idle and busy forget a
   * running job; finished, stopped and error end it; attention halts its clock; paused and
   * printing need a job (start one with startPrint). `word` is the face's own word for this
   * state, when its vendor has several for one activity.
   */
  setActivity(activity: SimActivity, word?: string): void {
    const job = this.#active();
    switch (activity) {
      case "idle":
      case "busy":
        if (job) this.#hold(job);
        this.#job = undefined;
        this.#coolDown(this.clock());
        break;
      case "finished":
      case "stopped":
      case "error":
        if (job) this.#end(job, activity);
        break;
      case "attention":
        if (job) this.#hold(job);
        break;
      case "paused":
        if (!job) throw new SimHttpError(409, "Conflict", "paused needs a job: start a print first");
        this.#hold(job);
        job.state = "paused";
        break;
      case "printing":
        if (!job) throw new SimHttpError(409, "Conflict", "printing needs a job: start a print first");
        this.#run(job);
        break;
    }
    this.#setActivity(activity, word);
    this.#changed();
  }

  /** Changes the speed factor from now on (time already printed stays). */
  setSpeed(speed: number): void {
    checkSpeed(speed);
    this.tick();
    const now = this.clock();
    const job = this.#job;
    if (job?.since !== undefined) {
      this.#hold(job);
      job.since = now;
    }
    for (const heater of this.#heaters) this.#rebase(heater, now);
    this.#speed = speed;
  }

  // ---- heaters ----

  /** Sets a heater's target (0 turns it off), as M104/M140 or a face's API would. */
  setTarget(name: SimHeaterName, celsius: number): void {
    if (!this.#heaters.some((h) => h.name === name)) {
      throw new SimHttpError(404, "Not Found", `this printer has no heater ${name}`);
    }
    this.#setTarget(name, celsius, this.clock());
    this.#changed();
  }

  #rebase(heater: Heater, now: number): void {
    heater.from = this.#heat(heater, now);
    heater.at = now;
  }

  #setTarget(name: SimHeaterName, celsius: number, now: number): void {
    const heater = this.#heaters.find((h) => h.name === name);
    if (!heater) return;
    this.#rebase(heater, now);
    heater.target = Math.max(0, celsius);
  }

  #coolDown(now: number): void {
    for (const heater of this.#heaters) {
      this.#rebase(heater, now);
      heater.target = 0;
    }
  }

  // ---- transfers and HTTP faults ----

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
}

function checkSpeed(speed: number): number {
  if (!Number.isFinite(speed) || speed <= 0) throw new Error(`speed must be a positive number, got ${speed}`);
  return speed;
}
