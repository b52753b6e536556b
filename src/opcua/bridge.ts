/**
 * The one place OPC UA learns what the farm does: it follows the farm's events on the bus and
 * reads the farm's printer views and live jobs, then hands a picture of them to the mirror and
 * the embedded server. Events make it look at once (a print's progress is out within a moment);
 * between events it looks every interval, for temperatures, which are not events. The farm never
 * waits for it: a listener only marks the picture stale.
 */
import type { Clock } from "../core/clock.ts";
import type { Subscriber } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import { toFerryError } from "../core/errors.ts";
import { printerValues, type JobLike, type PrinterLike, type PrinterValues } from "./values.ts";

/** What the bridge reads of the farm (src/farm/farm.ts satisfies it). */
export interface FarmReader {
  printers(): Promise<PrinterLike[]>;
  list(filter: { state?: readonly LiveJobState[]; limit?: number }): Promise<JobLike[]>;
}

/** Jobs OPC UA lists: waiting, queued, and on a printer. */
export const LIVE_JOB_STATES = [
  "pending_approval",
  "queued",
  "scheduled",
  "uploading",
  "printing",
  "paused",
  "printed",
  "cancelling",
] as const;
export type LiveJobState = (typeof LIVE_JOB_STATES)[number];

/** The events that change what OPC UA shows (a subset of docs/events.md; payloads unread). */
export interface BridgeEvents {
  "job.state": object;
  "job.progress": object;
  "printer.state": object;
  "printer.bed": object;
  "printer.maintenance": object;
  "printer.waiting_bed_clear": object;
  "device.added": object;
  "device.removed": object;
  "farm.started": object;
}
const FOLLOWED: (keyof BridgeEvents)[] = [
  "job.state",
  "job.progress",
  "printer.state",
  "printer.bed",
  "printer.maintenance",
  "printer.waiting_bed_clear",
  "device.added",
  "device.removed",
  "farm.started",
];

export interface PrinterPicture {
  printer: PrinterLike;
  values: PrinterValues;
  /** This node's worker drives it: its live values are this node's to publish. */
  mine: boolean;
}

export interface FarmPicture {
  at: number;
  printers: Map<string, PrinterPicture>;
  /** Live jobs, newest first. */
  jobs: JobLike[];
}

export interface BridgeOptions {
  bus: Subscriber<BridgeEvents>;
  farm: FarmReader;
  /** This node's name (the farm's leases hold it). */
  node: string;
  /** A printer's URL (its device entry's `url`), "" when it has none. */
  urlOf: (printer: string) => string;
  clock: Clock;
  logger: Logger;
  /** Looks at least this often (temperatures). */
  intervalMs: number;
}

/** Events arriving together are read once: a pass waits this long after the first. */
const GATHER_MS = 20;

export class OpcuaBridge {
  readonly #o: BridgeOptions;
  readonly #listeners = new Set<(picture: FarmPicture) => void>();
  readonly #stop = new AbortController();
  #wake = new AbortController();
  #stale = true;
  #off: (() => void)[] = [];
  #loop: Promise<void> | undefined;
  #last: FarmPicture | undefined;

  constructor(options: BridgeOptions) {
    this.#o = options;
  }

  /** The latest picture, if one was taken. */
  get picture(): FarmPicture | undefined {
    return this.#last;
  }

  /** Called with every new picture (and at once with the latest, if any). */
  onPicture(listener: (picture: FarmPicture) => void): () => void {
    this.#listeners.add(listener);
    if (this.#last) listener(this.#last);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    for (const type of FOLLOWED) this.#off.push(this.#o.bus.on(type, () => this.refresh()));
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    for (const off of this.#off.splice(0)) off();
    await this.#loop;
  }

  /** Look again now. */
  refresh(): void {
    this.#stale = true;
    const wake = this.#wake;
    this.#wake = new AbortController();
    wake.abort();
  }

  /** Takes a picture now (also what the loop does). */
  async look(): Promise<FarmPicture> {
    const { farm, node, urlOf, clock } = this.#o;
    const [printers, jobs] = await Promise.all([
      farm.printers(),
      farm.list({ state: LIVE_JOB_STATES, limit: 1000 }),
    ]);
    const now = clock.now();
    const picture: FarmPicture = {
      at: now,
      printers: new Map(
        printers.map((printer) => [
          printer.name,
          {
            printer,
            values: printerValues(printer, urlOf(printer.name), now),
            mine: printer.drivenBy === node,
          },
        ]),
      ),
      jobs,
    };
    this.#last = picture;
    for (const listener of this.#listeners) {
      try {
        listener(picture);
      } catch (error) {
        this.#o.logger.warn({ err: toFerryError(error).message }, "opcua: a listener failed");
      }
    }
    return picture;
  }

  async #run(): Promise<void> {
    const { clock, logger, intervalMs } = this.#o;
    const signal = this.#stop.signal;
    const stopped = () => signal.aborted;
    let failing = false;
    while (!stopped()) {
      const wake = this.#wake.signal;
      if (this.#stale) {
        this.#stale = false;
        try {
          await this.look();
          if (failing) logger.info("opcua: reading the farm works again");
          failing = false;
        } catch (error) {
          if (stopped()) break;
          if (!failing)
            logger.warn({ err: toFerryError(error).message }, "opcua: cannot read the farm, trying again");
          failing = true;
        }
      }
      const woken = await clock
        .sleep(intervalMs, AbortSignal.any([signal, wake]))
        .then(() => false)
        .catch(() => true);
      if (!woken) this.#stale = true;
      else if (!stopped()) await clock.sleep(GATHER_MS, signal).catch(() => undefined);
    }
  }
}
