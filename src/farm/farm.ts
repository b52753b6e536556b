/**
 * The print farm (DESIGN.md §5): jobs submitted, approved and cancelled; the scheduler that gives
 * queued jobs to idle printers; one worker per farm printer that reconciles the store with the
 * printer; uploads as durable tasks on the one runner. Built once in app.ts beside the sync
 * engine, started and stopped with it. The HTTP routes call the methods below; who may call what
 * (roles) is theirs to decide, the farm records who did.
 */
import type { FerryConfig, PrinterSettings } from "../config/index.ts";
import { systemClock, type Clock } from "../core/clock.ts";
import { FerryError, isFerryError, toFerryError } from "../core/errors.ts";
import type { Bus } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { Devices } from "../devices/devices.ts";
import type { DeviceEvents } from "../devices/events.ts";
import type { PrinterSnapshot, Temperature } from "../printers/driver.ts";
import { TRUSTED_ROLES } from "../config/schema.ts";
import type { Store } from "../store/store.ts";
import type { TaskQueue } from "../tasks/queue.ts";
import type { TaskRunner } from "../tasks/runner.ts";
import type { FarmContext } from "./context.ts";
import type { FarmEvents } from "./events.ts";
import { Jobs, type HistoryEntry, type Job, type JobFile, type JobFilter } from "./jobs.ts";
import { PrinterStates, type PrinterFarmState } from "./printer-states.ts";
import { schedule, type SchedulerPrinter } from "./scheduler.ts";
import type { JobState } from "./states.ts";
import { noJobFiles, registerUploadHandler, type JobFiles } from "./upload.ts";
import { isHeating, PrinterWorker } from "./worker.ts";

export interface FarmOptions {
  config: FerryConfig;
  devices: Devices;
  store: Store;
  queue: TaskQueue;
  runner: TaskRunner;
  bus: Bus<FarmEvents & DeviceEvents>;
  logger: Logger;
  /** This node's name (leases are held in it). */
  node: string;
  clock?: Clock;
  /** Where jobs' files are read from (the file library). */
  files?: JobFiles;
  /** Default: ferry.yaml's farm.interval. */
  intervalMs?: number;
  /** Default: 15 s or five intervals, whichever is longer. */
  leaseMs?: number;
  /** Default: 30 s or five intervals, whichever is longer. */
  startGraceMs?: number;
}

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

/** A farm printer as the API shows it. */
export interface PrinterView {
  name: string;
  kind: string;
  model: string | null;
  tags: string[];
  autoClear: boolean;
  cameraUrl: string | null;
  /** As this node last saw it; null when another node drives it (or it was not seen yet). */
  connection: PrinterSnapshot["connection"] | null;
  activity: PrinterSnapshot["activity"] | null;
  rawState: string | null;
  temperatures: Temperature[];
  heating: boolean;
  observedAt: number | null;
  /** The job holding the printer, with its progress and time left. */
  job: Job | null;
  bedClear: boolean;
  maintenance: PrinterFarmState["maintenance"];
  /** The node whose worker drives it (null: none now). */
  drivenBy: string | null;
  /** What its worker waits for, or its last error. */
  waiting: string | null;
  lastError: string | null;
}

const MAX_QUANTITY = 1000;
const DEFAULT_LEASE_MS = 15_000;
const DEFAULT_START_GRACE_MS = 30_000;

function invalid(message: string): FerryError {
  return new FerryError("NAME_INVALID", message, { retryable: false });
}

export class Farm {
  readonly jobs: Jobs;
  readonly printerStates: PrinterStates;
  readonly #o: FarmOptions;
  readonly #ctx: FarmContext;
  readonly #clock: Clock;
  readonly #workers = new Map<string, PrinterWorker>();
  readonly #stop = new AbortController();
  #wakeScheduler = new AbortController();
  #loops: Promise<void>[] = [];
  #off: (() => void)[] = [];
  /** Why each queued job waits, from this node's last scheduling pass. */
  #waiting = new Map<string, string>();

  constructor(options: FarmOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    const clock = this.#clock;
    const now = () => clock.now();
    this.jobs = new Jobs(options.store, { clock: now, bus: options.bus });
    this.printerStates = new PrinterStates(options.store, { clock: now });
    const intervalMs = options.intervalMs ?? options.config.farm.intervalS * 1000;
    this.#ctx = {
      jobs: this.jobs,
      states: this.printerStates,
      devices: options.devices,
      queue: options.queue,
      runner: options.runner,
      files: options.files ?? noJobFiles,
      bus: options.bus,
      logger: options.logger.child({ part: "farm" }),
      clock,
      node: options.node,
      intervalMs,
      leaseMs: options.leaseMs ?? Math.max(DEFAULT_LEASE_MS, 5 * intervalMs),
      startGraceMs: options.startGraceMs ?? Math.max(DEFAULT_START_GRACE_MS, 5 * intervalMs),
      uploaded: (printer) => this.#workers.get(printer)?.wake(),
      scheduleSoon: () => this.#scheduleSoon(),
    };
    registerUploadHandler(options.runner, this.#ctx);
  }

  /** The farm printers: devices of a printer type with `farm: true`, from ferry.yaml and the API. */
  printerNames(): string[] {
    return this.#o.devices.names().filter((name) => this.#settings(name)?.farm === true);
  }

  #settings(name: string): PrinterSettings | undefined {
    return this.#o.devices.has(name) ? this.#o.devices.get(name).printer : undefined;
  }

  /** Starts a worker per farm printer and the scheduler; follows printers added or removed at run time. */
  start(): Promise<void> {
    for (const name of this.printerNames()) this.#startWorker(name);
    const { bus } = this.#o;
    this.#off.push(
      // A printer changed through the API is added again: its worker starts over with the new entry.
      bus.on("device.added", ({ payload }) => {
        void this.#stopWorker(payload.device).then(() => {
          if (this.#settings(payload.device)?.farm === true) this.#startWorker(payload.device);
        });
      }),
      bus.on("device.removed", ({ payload }) => void this.#stopWorker(payload.device)),
    );
    this.#loops.push(this.#scheduleLoop());
    bus.emit("farm.started", { printers: this.printerNames() });
    return Promise.resolve();
  }

  /** Stops the workers and the scheduler; leases are given up so another node takes over at once. */
  async stop(): Promise<void> {
    this.#stop.abort();
    for (const off of this.#off.splice(0)) off();
    this.#wakeScheduler.abort();
    await Promise.allSettled([...this.#workers.values()].map((w) => w.stop()));
    this.#workers.clear();
    await Promise.allSettled(this.#loops);
    this.#loops = [];
    this.#o.bus.emit("farm.stopped", {});
  }

  #startWorker(name: string): void {
    if (this.#stop.signal.aborted || this.#workers.has(name)) return;
    const worker = new PrinterWorker(this.#ctx, name);
    this.#workers.set(name, worker);
    worker.start();
  }

  async #stopWorker(name: string): Promise<void> {
    const worker = this.#workers.get(name);
    this.#workers.delete(name);
    await worker?.stop();
  }

  #wakeWorker(printer: string | null): void {
    if (printer !== null) this.#workers.get(printer)?.wake();
  }

  // ---- jobs ----

  /** A print request: `quantity` jobs of one order, queued, or waiting for approval when the role says so. */
  async submit(request: SubmitRequest): Promise<Job[]> {
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
    const approval = !trusted && this.#o.config.farm.approval.includes(request.role);
    const job = {
      file: request.file,
      owner: request.owner,
      priority,
      model: request.model?.trim() || null,
      tags,
      notes: request.notes ?? null,
      state: approval ? ("pending_approval" as const) : ("queued" as const),
    };
    const jobs = await this.jobs.create(
      Array.from({ length: quantity }, () => job),
      request.owner,
    );
    if (!approval) this.#scheduleSoon();
    return jobs;
  }

  async approve(id: string, actor: string): Promise<Job> {
    const job = await this.jobs.transition(id, "queued", {
      actor,
      expect: "pending_approval",
      reason: "approved",
    });
    this.#scheduleSoon();
    return job;
  }

  async reject(id: string, actor: string, reason?: string): Promise<Job> {
    return this.jobs.transition(id, "cancelled", {
      actor,
      expect: "pending_approval",
      reason: reason ? `rejected: ${reason}` : "rejected",
    });
  }

  /**
   * Cancels a job: at once when nothing of it is on a printer yet, else `cancelling` until its
   * printer's worker has stopped the print (or the upload). A print started at the printer is
   * only cancelled once an operator took it over.
   */
  async cancel(id: string, actor: string, reason?: string): Promise<Job> {
    const job = await this.jobs.require(id);
    this.#controllable(job);
    const direct: JobState[] = ["pending_approval", "queued", "scheduled"];
    const to = direct.includes(job.state) ? "cancelled" : "cancelling";
    const moved = await this.jobs.transition(id, to, {
      actor,
      expect: job.state,
      reason: reason ?? `cancelled by ${actor}`,
    });
    this.#wakeWorker(job.printer);
    if (to === "cancelled") this.#scheduleSoon();
    return moved;
  }

  /** Pauses the job's print at its printer; the job follows when its worker sees it paused. */
  async pause(id: string, actor: string): Promise<Job> {
    return this.#control(id, actor, "printing", "pause");
  }

  async resume(id: string, actor: string): Promise<Job> {
    return this.#control(id, actor, "paused", "resume");
  }

  async #control(id: string, actor: string, state: JobState, op: "pause" | "resume"): Promise<Job> {
    const job = await this.jobs.require(id);
    this.#controllable(job);
    if (job.state !== state || job.printer === null)
      throw new FerryError("CONFLICT", `job ${id} is ${job.state}, not ${state}`, {
        subject: id,
        retryable: false,
      });
    const driver = this.#o.devices.printer(job.printer);
    if (!driver?.[op])
      throw new FerryError("UNSUPPORTED", `${job.printer} cannot ${op} a print`, {
        subject: job.printer,
        retryable: false,
      });
    this.#ctx.logger.info({ job: id, printer: job.printer, actor }, `${op} asked`);
    await (op === "pause" ? driver.pause?.() : driver.resume?.());
    this.#wakeWorker(job.printer);
    return job;
  }

  #controllable(job: Job): void {
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

  /** An operator takes over a print started at the printer: Ferry may pause and cancel it from now on. */
  async takeOver(id: string, actor: string): Promise<Job> {
    const job = await this.jobs.require(id);
    if (job.origin !== "printer")
      throw new FerryError("CONFLICT", `job ${id} was asked of Ferry; there is nothing to take over`, {
        subject: id,
        retryable: false,
      });
    if (!(await this.jobs.update(id, ["printing", "paused"], { takenOverBy: actor })))
      throw new FerryError("CONFLICT", `job ${id} is ${job.state}, not printing or paused`, {
        subject: id,
        retryable: false,
      });
    return this.jobs.require(id);
  }

  /** A new priority for a job not yet on a printer (CONFLICT naming its state otherwise). */
  async reprioritize(id: string, priority: number, actor: string): Promise<Job> {
    if (!Number.isInteger(priority)) throw invalid("priority must be a whole number");
    if (!(await this.jobs.update(id, ["pending_approval", "queued"], { priority }))) {
      const job = await this.jobs.require(id);
      throw new FerryError(
        "CONFLICT",
        `job ${id} is ${job.state}; only a pending or queued job takes a new priority`,
        {
          subject: id,
          retryable: false,
        },
      );
    }
    this.#ctx.logger.info({ job: id, priority, actor }, "job reprioritized");
    this.#scheduleSoon();
    return this.jobs.require(id);
  }

  /**
   * An operator gives a queued job to a printer (with `auto_schedule: false`, the only way). The
   * printer must be in the farm, out of maintenance, free, and of the job's model and tags; its
   * bed must still be marked clear before the print starts.
   */
  async assign(id: string, printer: string, actor: string): Promise<Job> {
    const settings = this.#settings(printer);
    if (settings?.farm !== true)
      throw new FerryError("NOT_FOUND", `there is no farm printer ${printer}`, {
        subject: printer,
        retryable: false,
      });
    const job = await this.jobs.require(id);
    const lacks = [
      ...(job.model !== null && job.model.toLowerCase() !== (settings.model ?? "").toLowerCase()
        ? [`model ${job.model}`]
        : []),
      ...job.tags
        .filter((t) => !settings.tags.some((has) => has.toLowerCase() === t.toLowerCase()))
        .map((t) => `tag ${t}`),
    ];
    if (lacks.length > 0)
      throw new FerryError("CONFLICT", `${printer} lacks ${lacks.join(", ")} that job ${id} needs`, {
        subject: printer,
        retryable: false,
      });
    const farm = await this.printerStates.get(printer);
    if (farm.maintenance)
      throw new FerryError("CONFLICT", `${printer} is in maintenance (${farm.maintenance.reason})`, {
        subject: printer,
        retryable: false,
      });
    const moved = await this.jobs.transition(id, "scheduled", {
      actor,
      expect: "queued",
      reason: `assigned to ${printer}`,
      set: { printer },
    });
    this.#wakeWorker(printer);
    return moved;
  }

  list(filter: JobFilter = {}): Promise<Job[]> {
    return this.jobs.list(filter);
  }

  get(id: string): Promise<Job> {
    return this.jobs.require(id);
  }

  async history(id: string): Promise<HistoryEntry[]> {
    await this.jobs.require(id);
    return this.jobs.history(id);
  }

  /** Why a queued job still waits (from this node's last scheduling pass), if known. */
  why(id: string): string | undefined {
    return this.#waiting.get(id);
  }

  // ---- printers ----

  #farmPrinter(name: string): PrinterSettings {
    const settings = this.#settings(name);
    if (settings?.farm !== true)
      throw new FerryError("NOT_FOUND", `there is no farm printer ${name}`, {
        subject: name,
        retryable: false,
      });
    return settings;
  }

  /**
   * Someone took the part off the bed: a printed job completes; a printer without a job is known
   * to be clear from now on. CONFLICT while a job is on it otherwise.
   */
  async markBedClear(printer: string, actor: string): Promise<void> {
    this.#farmPrinter(printer);
    const job = await this.jobs.current(printer);
    if (job?.state === "printed") {
      await this.jobs.transition(job.id, "completed", {
        actor,
        expect: "printed",
        reason: "bed marked clear",
      });
    } else if (job) {
      throw new FerryError(
        "CONFLICT",
        `${printer} has job ${job.id} (${job.state}); its bed cannot be clear`,
        {
          subject: printer,
          retryable: false,
        },
      );
    } else {
      await this.printerStates.setBed(printer, true, actor);
      this.#o.bus.emit("printer.bed", { printer, clear: true, by: actor });
    }
    this.#scheduleSoon();
  }

  /** Maintenance on (a reason) or off (null): the scheduler leaves the printer alone meanwhile. */
  async setMaintenance(printer: string, reason: string | null, actor: string): Promise<void> {
    this.#farmPrinter(printer);
    const text = reason?.trim() ?? null;
    if (text === "") throw invalid("maintenance needs a reason");
    await this.printerStates.setMaintenance(printer, text, actor);
    this.#o.bus.emit("printer.maintenance", { printer, reason: text, by: actor });
    this.#wakeWorker(printer);
    if (text === null) this.#scheduleSoon();
  }

  async printers(): Promise<PrinterView[]> {
    const [states, jobs] = await Promise.all([this.printerStates.all(), this.jobs.onPrinters()]);
    return this.printerNames().map((name) => this.#view(name, states.get(name), jobs.get(name)));
  }

  async printer(name: string): Promise<PrinterView> {
    this.#farmPrinter(name);
    const [state, job] = await Promise.all([this.printerStates.get(name), this.jobs.current(name)]);
    return this.#view(name, state, job);
  }

  #view(name: string, state: PrinterFarmState | undefined, job: Job | undefined): PrinterView {
    const settings = this.#farmPrinter(name);
    const worker = this.#workers.get(name);
    const seen = worker?.owned ? worker.snapshot : undefined;
    const now = this.#clock.now();
    const leased = state?.leaseUntil !== null && state?.leaseUntil !== undefined && state.leaseUntil >= now;
    return {
      name,
      kind: this.#o.devices.get(name).kind,
      model: settings.model ?? null,
      tags: settings.tags,
      autoClear: settings.autoClear,
      cameraUrl: settings.cameraUrl ?? null,
      connection: seen?.connection ?? null,
      activity: seen?.activity ?? null,
      rawState: seen?.rawState ?? null,
      temperatures: seen?.temperatures ?? [],
      heating: seen ? isHeating(seen) : false,
      observedAt: seen?.observedAt ?? null,
      job: job ?? null,
      bedClear: state?.bedClear ?? false,
      maintenance: state?.maintenance ?? null,
      drivenBy: leased ? (state.leaseHolder ?? null) : null,
      waiting: worker?.owned ? (worker.waiting ?? null) : null,
      lastError: worker?.lastError ?? null,
    };
  }

  // ---- scheduling ----

  #scheduleSoon(): void {
    const wake = this.#wakeScheduler;
    this.#wakeScheduler = new AbortController();
    wake.abort();
  }

  async #scheduleLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const wake = this.#wakeScheduler.signal;
      try {
        await this.scheduleOnce();
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#ctx.logger.warn({ err: toFerryError(error).message }, "scheduling failed; trying again");
      }
      await this.#clock.sleep(this.#ctx.intervalMs, AbortSignal.any([signal, wake])).catch(() => undefined);
    }
  }

  /**
   * One scheduling pass over the printers this node drives: assignments made, and why each other
   * queued job waits (published when it changes). With `auto_schedule: false` nothing is assigned.
   */
  async scheduleOnce(): Promise<{ assigned: number }> {
    const queued = await this.jobs.queued();
    const waiting = new Map<string, string>();
    let assigned = 0;
    if (!this.#o.config.farm.autoSchedule) {
      for (const job of queued)
        waiting.set(job.id, "waiting for an operator to assign it (auto_schedule is off)");
    } else if (queued.length > 0) {
      const [states, onPrinters] = await Promise.all([this.printerStates.all(), this.jobs.onPrinters()]);
      const printers: SchedulerPrinter[] = [];
      for (const name of this.printerNames()) {
        const worker = this.#workers.get(name);
        const settings = this.#settings(name);
        const snapshot = worker?.owned ? worker.snapshot : undefined;
        const state = states.get(name);
        const holder = state?.leaseHolder ?? null;
        const elsewhere =
          worker?.owned !== true &&
          holder !== null &&
          holder !== this.#o.node &&
          (state?.leaseUntil ?? 0) >= this.#clock.now();
        printers.push({
          name,
          model: settings?.model ?? null,
          tags: settings?.tags ?? [],
          online: snapshot?.connection === "online",
          activity: snapshot?.activity ?? null,
          job: onPrinters.get(name)?.state ?? null,
          bedClear: state?.bedClear ?? false,
          maintenance: state?.maintenance?.reason ?? null,
          heating: snapshot ? isHeating(snapshot) : false,
          // Another node schedules onto the printers it drives.
          ...(elsewhere ? { drivenBy: holder } : {}),
        });
      }
      const plan = schedule(
        queued.map((j) => ({
          id: j.id,
          priority: j.priority,
          createdAt: j.createdAt,
          model: j.model,
          tags: j.tags,
        })),
        printers,
        { maxHeating: this.#o.config.farm.maxHeating },
      );
      for (const { job, printer } of plan.assignments) {
        try {
          await this.jobs.transition(job, "scheduled", {
            actor: "scheduler",
            expect: "queued",
            set: { printer },
          });
          assigned++;
          this.#wakeWorker(printer);
        } catch (error) {
          // Another node took the job or the printer first: the next pass sees it.
          if (!isFerryError(error, "CONFLICT")) throw error;
        }
      }
      for (const [id, why] of plan.waiting) waiting.set(id, why);
    }
    for (const [id, why] of waiting)
      if (this.#waiting.get(id) !== why) this.#o.bus.emit("job.waiting", { id, reason: why });
    this.#waiting = waiting;
    return { assigned };
  }
}
