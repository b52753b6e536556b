/**
 * The last hour of each farm printer's temperatures, for the dashboard's chart: kept in memory
 * from the live `printer.temperatures` events (which are never recorded in the event history), at
 * most one sample per printer every `stepMs`, so an hour is a few hundred points per printer
 * whatever the farm's interval. A restart starts the chart afresh.
 */
import type { App } from "../app.ts";
import type { Temperature } from "../printers/driver.ts";

export interface TemperatureSample {
  at: number;
  temperatures: Temperature[];
}

export interface TemperatureHistoryOptions {
  /** How far back samples are kept (default one hour). */
  keepMs?: number;
  /** At most one sample per printer this often (default 10 s). */
  stepMs?: number;
}

export class TemperatureHistory {
  readonly keepMs: number;
  readonly #stepMs: number;
  readonly #samples = new Map<string, TemperatureSample[]>();
  readonly #off: () => void;

  constructor(bus: App["bus"], options: TemperatureHistoryOptions = {}) {
    this.keepMs = options.keepMs ?? 3_600_000;
    this.#stepMs = options.stepMs ?? 10_000;
    this.#off = bus.on("printer.temperatures", ({ at, payload }) =>
      this.add(payload.printer, at, payload.temperatures),
    );
  }

  add(printer: string, at: number, temperatures: Temperature[]): void {
    let samples = this.#samples.get(printer);
    if (!samples) this.#samples.set(printer, (samples = []));
    // Samples kept are a step apart, and the last one is the newest reading (replaced by each new
    // one until it is a step past the one before it): the chart ends where the printer is now.
    const [previous, last] = [samples.at(-2), samples.at(-1)];
    if (previous && last && last.at - previous.at < this.#stepMs)
      samples[samples.length - 1] = { at, temperatures };
    else samples.push({ at, temperatures });
    const oldest = at - this.keepMs;
    let drop = 0;
    while (drop < samples.length && (samples[drop]?.at ?? 0) < oldest) drop++;
    if (drop > 0) samples.splice(0, drop);
  }

  /** A printer's samples, oldest first, none older than keepMs before `now`. */
  of(printer: string, now: number): TemperatureSample[] {
    return (this.#samples.get(printer) ?? []).filter((sample) => sample.at >= now - this.keepMs);
  }

  forget(printer: string): void {
    this.#samples.delete(printer);
  }

  close(): void {
    this.#off();
    this.#samples.clear();
  }
}
