/**
 * One printer worker per farm printer: while this node holds the printer's lease in the store, it
 * looks at the printer every interval (sooner when the printer pushes a change, an upload ends or
 * an operator acts), reads the job the store assigns to it, and carries out the reconciler's one
 * action. Every error is logged and retried with a growing pause; nothing ends a worker but the
 * farm stopping. A node that loses the lease (it stalled past it) stops acting on the printer.
 */
import { FerryError, toFerryError } from "../core/errors.ts";
import { basename } from "../core/paths.ts";
import type { PrinterDriver, PrinterSnapshot, Temperature } from "../printers/driver.ts";
import type { FarmContext } from "./context.ts";
import type { Job } from "./jobs.ts";
import { decide, type Action } from "./reconciler.ts";
import { dropUpload, enqueueUpload, printerPathOf, printerPathOfUpload, uploadStatus } from "./upload.ts";

/** The longest pause between tries after errors. */
const MAX_BACKOFF_MS = 60_000;
/** A heater this far below its target is heating. */
const HEATING_MARGIN_C = 5;

/** Refusals that prove a start did not happen (anything else may have reached the printer). */
const REFUSED = new Set([
  "BUSY",
  "CONFLICT",
  "NOT_FOUND",
  "UNSUPPORTED",
  "NAME_INVALID",
  "PERMISSION",
  "AUTH",
]);

export function isHeating(snapshot: PrinterSnapshot): boolean {
  return snapshot.temperatures.some(
    (t) => t.target !== undefined && t.target > 0 && t.actual < t.target - HEATING_MARGIN_C,
  );
}

/** Whether temperatures changed enough to be worth an event (a target, or an actual by 1 °C). */
export function temperaturesMoved(before: readonly Temperature[], now: readonly Temperature[]): boolean {
  if (before.length !== now.length) return true;
  return now.some((t, i) => {
    const old = before[i];
    return old?.name !== t.name || old.target !== t.target || Math.abs(old.actual - t.actual) >= 1;
  });
}

export class PrinterWorker {
  readonly printer: string;
  readonly #ctx: FarmContext;
  #wake = new AbortController();
  #stop = new AbortController();
  #loop: Promise<void> | undefined;
  /** Whether this node holds the printer's lease now. */
  owned = false;
  /** The printer as last seen. */
  snapshot: PrinterSnapshot | undefined;
  /** What the worker waits for, as the reconciler said last. */
  waiting: string | undefined;
  /** The last error, until a tick goes through. */
  lastError: string | undefined;
  /** The temperatures of the last printer.temperatures event. */
  #temperaturesShown: readonly Temperature[] = [];
  /** Whether it heats, as written to the store last (undefined: not written under this lease). */
  #heatingStored: boolean | undefined;
  /** Starts asked again, by job (this process's count: a restart may ask a few more times). */
  readonly #startRetries = new Map<string, number>();

  constructor(ctx: FarmContext, printer: string) {
    this.#ctx = ctx;
    this.printer = printer;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.wake();
    await this.#loop;
  }

  /** Look now rather than at the next interval. */
  wake(): void {
    const wake = this.#wake;
    this.#wake = new AbortController();
    wake.abort();
  }

  #driver(): PrinterDriver {
    const driver = this.#ctx.devices.printer(this.printer);
    if (!driver)
      throw new FerryError("UNSUPPORTED", `device ${this.printer} is not a printer`, { retryable: false });
    return driver;
  }

  async #run(): Promise<void> {
    const { clock, logger, states, node } = this.#ctx;
    const signal = this.#stop.signal;
    const stopped = () => signal.aborted;
    const pushed = this.#followPushes(signal);
    let failures = 0;
    while (!signal.aborted) {
      const wake = this.#wake.signal;
      let delay = this.#ctx.intervalMs;
      try {
        const owned = await states.acquire(this.printer, node, this.#ctx.leaseMs);
        if (owned !== this.owned) {
          this.owned = owned;
          this.#heatingStored = undefined;
          logger.info(
            { printer: this.printer, node },
            owned ? "driving the printer" : "another node drives the printer",
          );
        }
        if (owned) await this.tick(signal);
        failures = 0;
        this.lastError = undefined;
      } catch (error) {
        if (stopped()) break;
        failures++;
        // Never past the lease: a node whose ticks fail keeps its printer rather than hand it to
        // another node and back at every error.
        delay = Math.min(MAX_BACKOFF_MS, this.#ctx.leaseMs / 3, this.#ctx.intervalMs * 2 ** failures);
        this.lastError = toFerryError(error).message;
        logger.warn(
          { printer: this.printer, err: this.lastError, retryInMs: delay },
          "printer worker: an error, trying again",
        );
      }
      // stop() wakes it too, so `wake` alone ends the pause: no composite signal (and its weak
      // references) per printer per interval.
      await clock.sleep(delay, wake).catch(() => undefined);
    }
    await pushed;
    if (this.owned) await states.release(this.printer, node).catch(() => undefined);
    this.owned = false;
  }

  /** A printer that pushes its changes wakes the worker with each. */
  async #followPushes(signal: AbortSignal): Promise<void> {
    const stopped = () => signal.aborted;
    while (!stopped()) {
      try {
        const driver = this.#driver();
        if (driver.capabilities.events !== "push") return;
        for await (const _ of driver.events({ signal })) this.wake();
      } catch (error) {
        if (stopped()) return;
        this.#ctx.logger.warn(
          { printer: this.printer, err: toFerryError(error).message },
          "printer events failed",
        );
      }
      await this.#ctx.clock.sleep(this.#ctx.intervalMs, signal).catch(() => undefined);
    }
  }

  /** One look at the printer and at most one transition. */
  async tick(signal?: AbortSignal): Promise<Action> {
    const { jobs, states, clock, devices } = this.#ctx;
    const driver = this.#driver();
    const snapshot = await driver.snapshot(signal ? { signal } : {});
    this.#observe(snapshot);
    const heating = isHeating(snapshot);
    if (heating !== this.#heatingStored && (await states.setHeating(this.printer, this.#ctx.node, heating)))
      this.#heatingStored = heating;
    const job = await jobs.current(this.printer);
    const farm = await states.get(this.printer);
    const settings = devices.get(this.printer).printer;
    const upload =
      job && (job.state === "uploading" || job.state === "cancelling")
        ? await uploadStatus(this.#ctx, job)
        : { status: "none" as const, error: null };
    const action = decide({
      printer: this.printer,
      snapshot,
      job,
      // Only a print the printer shows and no job holds is weighed against them (reconciler.ts).
      recent: job || snapshot.job?.file === undefined ? [] : await jobs.recent(this.printer),
      bedClear: farm.bedClear,
      autoClear: settings?.autoClear ?? false,
      maintenance: farm.maintenance?.reason ?? null,
      upload: upload.status,
      uploadError: upload.error,
      caseInsensitive: driver.storage().capabilities.caseInsensitive,
      now: clock.now(),
      startGraceMs: this.#ctx.startGraceMs,
      startRetries: job ? (this.#startRetries.get(job.id) ?? 0) : 0,
    });
    this.waiting = action.type === "wait" ? action.why : undefined;
    await this.#apply(action, job, driver);
    if (job && action.type === "wait") await this.#progress(job, snapshot);
    return action;
  }

  async #apply(action: Action, job: Job | undefined, driver: PrinterDriver): Promise<void> {
    const { jobs, node, bus, runner } = this.#ctx;
    const actor = (by: "printer" | "ferry") =>
      by === "printer" ? `printer ${this.printer}` : `ferry@${node}`;
    switch (action.type) {
      case "wait":
        return;
      case "adopt": {
        const shown = action.job;
        await jobs.create(
          [
            {
              file: { id: null, name: basename(shown.file), sha256: null },
              owner: null,
              origin: "printer",
              state: action.state,
              printer: this.printer,
              printerJobId: shown.id ?? null,
              printerPath: shown.file,
              progress: shown.progress ?? null,
              remainingS: shown.remainingS ?? null,
              startedAt: shown.startedAt ?? this.#ctx.clock.now(),
            },
          ],
          `printer ${this.printer}`,
        );
        this.wake();
        return;
      }
    }
    if (!job) return;
    switch (action.type) {
      case "transition": {
        const moved = await jobs.transition(job.id, action.to, {
          actor: actor(action.by),
          expect: job.state,
          ...(action.reason === undefined ? {} : { reason: action.reason }),
          ...(action.set ? { set: action.set } : {}),
        });
        if (moved.state === "printed" && !(this.#ctx.devices.get(this.printer).printer?.autoClear ?? false))
          bus.emit("printer.waiting_bed_clear", { printer: this.printer, job: job.id, file: job.file.name });
        if (moved.state === "queued" || moved.state === "completed") this.#ctx.scheduleSoon();
        // Another transition may follow at once (printed → completed with auto_clear).
        this.wake();
        return;
      }
      case "begin-upload": {
        const path = printerPathOf(job, this.#ctx.clock.now());
        await jobs.transition(job.id, "uploading", {
          actor: actor("ferry"),
          expect: "scheduled",
          set: { printerPath: path },
        });
        await enqueueUpload(this.#ctx, job, this.printer, path);
        runner.notify();
        return;
      }
      case "upload":
        await enqueueUpload(this.#ctx, job, this.printer, printerPathOfUpload(job));
        runner.notify();
        return;
      case "start":
        await this.#start(job, driver);
        return;
      case "retry-start":
        this.#startRetries.set(job.id, (this.#startRetries.get(job.id) ?? 0) + 1);
        this.#ctx.logger.warn({ printer: this.printer, job: job.id }, `${action.why}; asking again`);
        await jobs.update(job.id, "uploading", { startRequestedAt: null });
        this.wake();
        return;
      case "cancel":
        if (!driver.cancel)
          throw new FerryError("UNSUPPORTED", `${this.printer} cannot cancel a print`, { retryable: false });
        try {
          await driver.cancel();
        } catch (error) {
          // Nothing runs any more: the next look records the job cancelled.
          if (toFerryError(error).code !== "CONFLICT") throw error;
        }
        this.wake();
        return;
      case "drop-upload":
        await dropUpload(this.#ctx, job);
        await jobs.transition(job.id, "cancelled", {
          actor: actor("ferry"),
          expect: "cancelling",
          reason: "cancelled before it reached the printer",
        });
        return;
    }
  }

  /** Asks the printer to print the job's file, once: the store records the request first. */
  async #start(job: Job, driver: PrinterDriver): Promise<void> {
    const { jobs } = this.#ctx;
    if (!driver.startJob)
      throw new FerryError("UNSUPPORTED", `${this.printer} cannot start a print`, { retryable: false });
    if (!(await jobs.claimStart(job.id))) return;
    try {
      await driver.startJob(printerPathOfUpload(job));
    } catch (error) {
      const failure = toFerryError(error);
      if (REFUSED.has(failure.code)) {
        // Refused: it did not start, so it may be asked again (a vanished file is sent again).
        await jobs.update(job.id, "uploading", {
          startRequestedAt: null,
          ...(failure.code === "NOT_FOUND" ? { uploadedAt: null } : {}),
        });
      }
      throw error;
    }
    this.wake();
  }

  async #progress(job: Job, snapshot: PrinterSnapshot): Promise<void> {
    const shown = snapshot.job;
    if ((job.state !== "printing" && job.state !== "paused") || shown?.progress === undefined) return;
    const remainingS = shown.remainingS === undefined ? null : Math.round(shown.remainingS);
    if (shown.progress === job.progress && remainingS === job.remainingS) return;
    if (await this.#ctx.jobs.update(job.id, ["printing", "paused"], { progress: shown.progress, remainingS }))
      this.#ctx.bus.emit("job.progress", {
        id: job.id,
        printer: this.printer,
        progress: shown.progress,
        remainingS,
      });
  }

  /** Printer events when its connection or activity changes. */
  #observe(snapshot: PrinterSnapshot): void {
    const before = this.snapshot;
    this.snapshot = snapshot;
    if (temperaturesMoved(this.#temperaturesShown, snapshot.temperatures)) {
      this.#temperaturesShown = snapshot.temperatures;
      this.#ctx.bus.emit("printer.temperatures", {
        printer: this.printer,
        temperatures: snapshot.temperatures,
      });
    }
    if (before?.connection === snapshot.connection && before.activity === snapshot.activity) return;
    const { bus } = this.#ctx;
    bus.emit("printer.state", {
      printer: this.printer,
      connection: snapshot.connection,
      activity: snapshot.activity,
      rawState: snapshot.rawState ?? null,
      before: before ? { connection: before.connection, activity: before.activity } : null,
    });
    if (snapshot.connection !== "online") {
      bus.emit("printer.error", {
        printer: this.printer,
        problem: snapshot.connection,
        message: snapshot.offlineReason ?? snapshot.connection,
      });
    } else if (snapshot.activity === "error" || snapshot.activity === "attention") {
      bus.emit("printer.error", {
        printer: this.printer,
        problem: snapshot.activity,
        message: snapshot.rawState ?? snapshot.activity,
      });
    }
  }
}
