/**
 * The farm's scheduling pass: every interval (sooner when a job is queued or a printer may have
 * become free) it reads the queued jobs and the farm printers' states, asks the pure scheduler
 * (scheduler.ts) for assignments, moves the assigned jobs to `scheduled` and publishes why each
 * other queued job waits. Each node schedules onto the printers it drives.
 */
import type { FerryConfig, PrinterSettings } from "../config/index.ts";
import { isFerryError, toFerryError } from "../core/errors.ts";
import type { FarmContext } from "./context.ts";
import { schedule, type SchedulerPrinter, type Waiting } from "./scheduler.ts";
import { isHeating, type PrinterWorker } from "./worker.ts";

export interface SchedulingOptions {
  ctx: FarmContext;
  config: FerryConfig;
  /** The farm printers now. */
  printerNames(): string[];
  settings(name: string): PrinterSettings | undefined;
  /** This node's worker of a printer, if any. */
  worker(name: string): PrinterWorker | undefined;
}

export class Scheduling {
  readonly #o: SchedulingOptions;
  #wake = new AbortController();
  /** Why each queued job waits, from this node's last pass. */
  #waiting = new Map<string, Waiting>();

  constructor(options: SchedulingOptions) {
    this.#o = options;
  }

  /** Run a pass now rather than at the next interval. */
  soon(): void {
    const wake = this.#wake;
    this.#wake = new AbortController();
    wake.abort();
  }

  /** Passes until `signal` fires; an error is logged and the next pass tries again. */
  async loop(signal: AbortSignal): Promise<void> {
    const { clock, intervalMs, logger } = this.#o.ctx;
    const stopped = () => signal.aborted;
    while (!signal.aborted) {
      const wake = this.#wake.signal;
      try {
        await this.once();
      } catch (error) {
        if (stopped()) return;
        logger.warn({ err: toFerryError(error).message }, "scheduling failed; trying again");
      }
      await clock.sleep(intervalMs, AbortSignal.any([signal, wake])).catch(() => undefined);
    }
  }

  /** Why a queued job still waits (from this node's last pass), if known. */
  why(id: string): string | undefined {
    return this.#waiting.get(id)?.reason;
  }

  /**
   * One pass over the printers this node drives: assignments made, and why each other queued job
   * waits (published when its cause changes: a thousand printers change the details of every
   * waiting job's reason several times a second). With `auto_schedule: false` nothing is assigned.
   */
  async once(): Promise<{ assigned: number }> {
    const { ctx, config } = this.#o;
    const queued = await ctx.jobs.queued();
    let waiting = new Map<string, Waiting>();
    let assigned = 0;
    if (!config.farm.autoSchedule) {
      const reason = "waiting for an operator to assign it (auto_schedule is off)";
      const manual = { reason, cause: reason };
      for (const job of queued) waiting.set(job.id, manual);
    } else if (queued.length > 0) {
      const plan = schedule(queued, await this.#printers(), { maxHeating: config.farm.maxHeating });
      waiting = plan.waiting;
      for (const { job, printer } of plan.assignments) {
        try {
          await ctx.jobs.transition(job, "scheduled", {
            actor: "scheduler",
            expect: "queued",
            set: { printer },
          });
          assigned++;
          this.#o.worker(printer)?.wake();
        } catch (error) {
          // Another node took the job or the printer first: the next pass sees it.
          if (!isFerryError(error, "CONFLICT")) throw error;
        }
      }
    }
    // forEach: a queue of thousands, walked every pass, without an entry array per job.
    waiting.forEach((why, id) => {
      if (this.#waiting.get(id)?.cause !== why.cause) ctx.bus.emit("job.waiting", { id, reason: why.reason });
    });
    this.#waiting = waiting;
    return { assigned };
  }

  /** The farm printers as the scheduler sees them. */
  async #printers(): Promise<SchedulerPrinter[]> {
    const { ctx } = this.#o;
    const [states, onPrinters] = await Promise.all([ctx.states.all(), ctx.jobs.onPrinters()]);
    const now = ctx.clock.now();
    return this.#o.printerNames().map((name) => {
      const worker = this.#o.worker(name);
      const settings = this.#o.settings(name);
      const snapshot = worker?.owned ? worker.snapshot : undefined;
      const state = states.get(name);
      const holder = state?.leaseHolder ?? null;
      const elsewhere =
        worker?.owned !== true && holder !== null && holder !== ctx.node && (state?.leaseUntil ?? 0) >= now;
      return {
        name,
        model: settings?.model ?? null,
        tags: settings?.tags ?? [],
        online: snapshot?.connection === "online",
        activity: snapshot?.activity ?? null,
        job: onPrinters.get(name)?.state ?? null,
        bedClear: state?.bedClear ?? false,
        maintenance: state?.maintenance?.reason ?? null,
        // Another node's printer counts as its driver last wrote it: max_heating is farm-wide.
        heating: snapshot ? isHeating(snapshot) : (state?.heating ?? false),
        // Another node schedules onto the printers it drives.
        ...(elsewhere ? { drivenBy: holder } : {}),
      };
    });
  }
}
