/**
 * The print farm (DESIGN.md §5): jobs submitted, approved and cancelled; the scheduler that gives
 * queued jobs to idle printers; one worker per farm printer that reconciles the store with the
 * printer; uploads as durable tasks on the one runner. Built once in app.ts beside the sync
 * engine, started and stopped with it. The HTTP routes call the methods below; who may call what
 * (roles) is theirs to decide, the farm records who did.
 */
import type { FerryConfig, PrinterSettings } from "../config/index.ts";
import { systemClock, type Clock } from "../core/clock.ts";
import type { Bus } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { Devices } from "../devices/devices.ts";
import type { DeviceEvents } from "../devices/events.ts";
import type { Store } from "../store/store.ts";
import type { TaskQueue } from "../tasks/queue.ts";
import type { TaskRunner } from "../tasks/runner.ts";
import type { FarmContext } from "./context.ts";
import type { FarmEvents } from "./events.ts";
import { Jobs, type HistoryEntry, type Job, type JobFilter } from "./jobs.ts";
import { PrinterStates, type PrinterFarmState } from "./printer-states.ts";
import { printerView, type PrinterView } from "./printer-views.ts";
import {
  assertControllable,
  assertFits,
  assertReprintable,
  invalid,
  refused,
  requestedJobs,
  type SubmitRequest,
} from "./requests.ts";
import { Scheduling } from "./scheduling.ts";
import type { JobState } from "./states.ts";
import { noJobFiles, registerUploadHandler, type JobFiles } from "./upload.ts";
import { PrinterWorker } from "./worker.ts";

export type { PrinterView } from "./printer-views.ts";
export type { SubmitRequest } from "./requests.ts";

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

const DEFAULT_LEASE_MS = 15_000;
const DEFAULT_START_GRACE_MS = 30_000;

export class Farm {
  readonly jobs: Jobs;
  readonly printerStates: PrinterStates;
  readonly #o: FarmOptions;
  readonly #ctx: FarmContext;
  readonly #clock: Clock;
  readonly #workers = new Map<string, PrinterWorker>();
  readonly #stop = new AbortController();
  readonly #scheduling: Scheduling;
  #loops: Promise<void>[] = [];
  #off: (() => void)[] = [];

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
    this.#scheduling = new Scheduling({
      ctx: this.#ctx,
      config: options.config,
      printerNames: () => this.printerNames(),
      settings: (name) => this.#settings(name),
      worker: (name) => this.#workers.get(name),
    });
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
    this.#loops.push(this.#scheduling.loop(this.#stop.signal));
    bus.emit("farm.started", { printers: this.printerNames() });
    return Promise.resolve();
  }

  /** Stops the workers and the scheduler; leases are given up so another node takes over at once. */
  async stop(): Promise<void> {
    this.#stop.abort();
    for (const off of this.#off.splice(0)) off();
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

  #scheduleSoon(): void {
    this.#scheduling.soon();
  }

  #wakeWorker(printer: string | null): void {
    if (printer !== null) this.#workers.get(printer)?.wake();
  }

  // ---- jobs ----

  /** A print request: `quantity` jobs of one order, queued, or waiting for approval when the role says so. */
  async submit(request: SubmitRequest): Promise<Job[]> {
    const jobs = await this.jobs.create(requestedJobs(request, this.#o.config), request.owner);
    const approval = jobs[0]?.state === "pending_approval";
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
    assertControllable(job);
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
    assertControllable(job);
    if (job.state !== state || job.printer === null)
      throw refused("CONFLICT", `job ${id} is ${job.state}, not ${state}`, id);
    const driver = this.#o.devices.printer(job.printer);
    if (!driver?.[op]) throw refused("UNSUPPORTED", `${job.printer} cannot ${op} a print`, job.printer);
    this.#ctx.logger.info({ job: id, printer: job.printer, actor }, `${op} asked`);
    await (op === "pause" ? driver.pause?.() : driver.resume?.());
    this.#wakeWorker(job.printer);
    return job;
  }

  /** A failed job back in the queue (history row by `actor`), printed again from the start. */
  async requeue(id: string, actor: string): Promise<Job> {
    assertReprintable(await this.jobs.require(id));
    const job = await this.jobs.transition(id, "queued", { actor, expect: "failed", reason: "requeued" });
    this.#scheduleSoon();
    return job;
  }

  /** An operator takes over a print started at the printer: Ferry may pause and cancel it from now on. */
  async takeOver(id: string, actor: string): Promise<Job> {
    const job = await this.jobs.require(id);
    if (job.origin !== "printer")
      throw refused("CONFLICT", `job ${id} was asked of Ferry; there is nothing to take over`, id);
    if (!(await this.jobs.update(id, ["printing", "paused"], { takenOverBy: actor })))
      throw refused("CONFLICT", `job ${id} is ${job.state}, not printing or paused`, id);
    return this.jobs.require(id);
  }

  /** A new priority for a job not yet on a printer (CONFLICT naming its state otherwise). */
  async reprioritize(id: string, priority: number, actor: string): Promise<Job> {
    if (!Number.isInteger(priority)) throw invalid("priority must be a whole number");
    if (!(await this.jobs.update(id, ["pending_approval", "queued"], { priority }))) {
      const job = await this.jobs.require(id);
      throw refused(
        "CONFLICT",
        `job ${id} is ${job.state}; only a pending or queued job takes a new priority`,
        id,
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
    if (settings?.farm !== true) throw refused("NOT_FOUND", `there is no farm printer ${printer}`, printer);
    const job = await this.jobs.require(id);
    assertFits(job, printer, settings);
    const farm = await this.printerStates.get(printer);
    if (farm.maintenance)
      throw refused("CONFLICT", `${printer} is in maintenance (${farm.maintenance.reason})`, printer);
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
    return this.#scheduling.why(id);
  }

  // ---- printers ----

  #farmPrinter(name: string): PrinterSettings {
    const settings = this.#settings(name);
    if (settings?.farm !== true) throw refused("NOT_FOUND", `there is no farm printer ${name}`, name);
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
      throw refused(
        "CONFLICT",
        `${printer} has job ${job.id} (${job.state}); its bed cannot be clear`,
        printer,
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
    return printerView({
      name,
      kind: this.#o.devices.get(name).kind,
      settings: this.#farmPrinter(name),
      worker: this.#workers.get(name),
      state,
      job,
      now: this.#clock.now(),
    });
  }

  /** One scheduling pass now (scheduling.ts). */
  scheduleOnce(): Promise<{ assigned: number }> {
    return this.#scheduling.once();
  }
}
