/**
 * The PrinterDriver contract: one printer of any vendor seen through one normalized snapshot, a
 * stream of its changes, print control per capability, and its files as a StorageAdapter so that
 * sending a file to a printer is an ordinary transfer. Policy (which activities let a sync touch
 * files) lives with its user, not here.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { FerryError, toFerryError } from "../core/errors.ts";
import type { AdapterContext, StorageAdapter } from "../storage/adapter.ts";

/**
 * The folder of a farm printer's storage where the print farm puts its jobs' files. It is the
 * farm's: a sync to that printer neither deletes nor writes anything in it.
 */
export const FARM_FOLDER = "ferry";

export const ACTIVITIES = [
  "idle",
  "busy",
  "printing",
  "paused",
  "finished",
  "stopped",
  "error",
  "attention",
] as const;
/** What the printer is doing; a vendor's state word it does not know maps to `busy`. */
export type Activity = (typeof ACTIVITIES)[number];

/** online: it answers; offline: no answer (network, HTTP 5xx); auth_failed: it refuses our credentials. */
export type Connection = "online" | "offline" | "auth_failed";

export interface JobSnapshot {
  /** The printer's own job id, when it has one. */
  id?: string;
  /** The printed file as a path of the printer's storage adapter (long names), when known. */
  file?: string;
  /** ms since the epoch, when the printer tells it (or elapsed time lets it be worked out). */
  startedAt?: number;
  /** 0..1 */
  progress?: number;
  elapsedS?: number;
  remainingS?: number;
}

/** Heaters by one name for every vendor: tool0, tool1, … for hotends, bed, chamber. */
export type HeaterName = `tool${number}` | "bed" | "chamber";

export interface Temperature {
  name: HeaterName;
  /** °C */
  actual: number;
  /** °C; 0 is off. */
  target?: number;
}

export interface PrinterSnapshot {
  connection: Connection;
  activity: Activity;
  /** The device's own state word (e.g. PrusaLink's "PRINTING", OctoPrint's "Operational"), for display. */
  rawState?: string;
  job?: JobSnapshot;
  temperatures: Temperature[];
  /** ms since the epoch */
  observedAt: number;
  /** Why the printer is offline or refuses us (the network, HTTP or auth error), for messages. */
  offlineReason?: string;
}

/** What a printer changed between two snapshots (its time of observation aside). */
export type SnapshotChange = "connection" | "activity" | "job" | "temperatures";

export type PrinterEvent =
  /** The first snapshot of a stream. */
  | { type: "snapshot"; snapshot: PrinterSnapshot }
  | { type: "change"; snapshot: PrinterSnapshot; previous: PrinterSnapshot; changed: SnapshotChange[] };

export interface PrinterCapabilities {
  /** Can start a print of a file on its storage. */
  startJob: boolean;
  pause: boolean;
  resume: boolean;
  cancel: boolean;
  /** push: the printer tells us of changes (Moonraker's websocket); poll: we ask every interval. */
  events: "push" | "poll";
}

export interface OpOptions {
  signal?: AbortSignal;
}

/** Room for vendor options (a Bambu plate, material mapping) without changing the call. */
export type StartJobOptions = OpOptions;

export interface EventsOptions extends OpOptions {
  /** How often a polling driver asks; push drivers use it only to retry a lost connection. */
  intervalMs?: number;
}

/** A polling stream asks every 2 s unless told otherwise (the one interval setting). */
export const DEFAULT_EVENTS_INTERVAL_MS = 2_000;

export interface PrinterDriver {
  readonly kind: string;
  readonly name: string;
  readonly capabilities: Readonly<PrinterCapabilities>;
  /** Never throws for an unreachable or refusing printer: `connection` says so instead. */
  snapshot(options?: OpOptions): Promise<PrinterSnapshot>;
  /**
   * A first snapshot, then a change each time the printer differs; ends when the signal fires.
   * Never throws for a printer that goes away: the change says `offline` and the stream goes on.
   */
  events(options?: EventsOptions): AsyncIterable<PrinterEvent>;
  /** Starts printing a file of `storage()` (a path of that adapter). BUSY while another job runs. */
  startJob?(path: string, options?: StartJobOptions): Promise<void>;
  /** CONFLICT when nothing prints. */
  pause?(options?: OpOptions): Promise<void>;
  /** CONFLICT when nothing is paused. */
  resume?(options?: OpOptions): Promise<void>;
  /** CONFLICT when no job runs (a clear error, never a silent success). */
  cancel?(options?: OpOptions): Promise<void>;
  /** The printer's files; the same instance on every call. */
  storage(): StorageAdapter;
  close(): Promise<void>;
}

export interface PrinterDriverDefinition<Options> {
  kind: string;
  optionsSchema: z.ZodType<Options>;
  capabilities: Readonly<PrinterCapabilities>;
  create(options: Options, context: AdapterContext): PrinterDriver;
  /** Why these options send credentials in clear (an API key over http://), if they do. */
  cleartext?(options: Options): string | undefined;
}

/** What validating a printer's entry needs of its kind: everything but the implementation. */
export type PrinterKind<Options> = Omit<PrinterDriverDefinition<Options>, "create">;

/** A driver's or storage adapter's `cleartext`: an API key sent in a header over http:// is readable. */
export function apiKeyInClear(options: { url: string; api_key?: unknown }): string | undefined {
  return options.api_key !== undefined && options.url.startsWith("http:")
    ? "the API key goes over http:// in clear"
    : undefined;
}

const OPTIONAL_METHODS = [
  ["startJob", (c: PrinterCapabilities) => c.startJob],
  ["pause", (c: PrinterCapabilities) => c.pause],
  ["resume", (c: PrinterCapabilities) => c.resume],
  ["cancel", (c: PrinterCapabilities) => c.cancel],
] as const;

/** Throws when a driver's optional methods and its capabilities disagree. */
export function assertPrinterCapabilitiesMatch(driver: PrinterDriver): void {
  for (const [method, claimed] of OPTIONAL_METHODS) {
    const has = typeof driver[method] === "function";
    if (has !== claimed(driver.capabilities)) {
      throw new FerryError(
        "PROTOCOL",
        `${driver.kind} driver ${has ? "has" : "lacks"} ${method}() but its capabilities say otherwise`,
      );
    }
  }
}

export function definePrinterDriver<Options>(
  definition: PrinterDriverDefinition<Options>,
): PrinterDriverDefinition<Options> {
  return Object.freeze({
    ...definition,
    capabilities: Object.freeze({ ...definition.capabilities }),
    create(options: Options, context: AdapterContext): PrinterDriver {
      const driver = definition.create(options, context);
      assertPrinterCapabilitiesMatch(driver);
      return driver;
    },
  });
}

/**
 * The snapshot of a printer that did not answer (`offline`) or refused our credentials
 * (`auth_failed`), from the error its request ended with; any other error is thrown on, a bug or a
 * reply Ferry does not understand is not a printer that went away.
 */
export function unreachableSnapshot(error: unknown, observedAt: number): PrinterSnapshot {
  const failure = toFerryError(error);
  const refused = failure.code === "AUTH" || failure.code === "PERMISSION";
  if (!refused && failure.code !== "UNAVAILABLE" && failure.code !== "TRANSIENT") throw failure;
  return {
    connection: refused ? "auth_failed" : "offline",
    activity: "busy",
    temperatures: [],
    observedAt,
    offlineReason: failure.message,
  };
}

/** What differs between two snapshots, their time of observation aside. */
export function changesBetween(previous: PrinterSnapshot, next: PrinterSnapshot): SnapshotChange[] {
  const changed: SnapshotChange[] = [];
  if (previous.connection !== next.connection || previous.offlineReason !== next.offlineReason)
    changed.push("connection");
  if (previous.activity !== next.activity || previous.rawState !== next.rawState) changed.push("activity");
  if (JSON.stringify(previous.job) !== JSON.stringify(next.job)) changed.push("job");
  if (JSON.stringify(previous.temperatures) !== JSON.stringify(next.temperatures))
    changed.push("temperatures");
  return changed;
}

/**
 * The polling `events()` of a driver that cannot push: a snapshot every interval, a change when it
 * differs from the last. Ends quietly when the signal fires.
 */
export async function* pollEvents(
  snapshot: (options: OpOptions) => Promise<PrinterSnapshot>,
  options: EventsOptions = {},
): AsyncIterable<PrinterEvent> {
  const { signal } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_EVENTS_INTERVAL_MS;
  const ask = () => snapshot(signal ? { signal } : {});
  let previous: PrinterSnapshot;
  try {
    previous = await ask();
  } catch (error) {
    if (signal?.aborted) return;
    throw error;
  }
  yield { type: "snapshot", snapshot: previous };
  while (!signal?.aborted) {
    try {
      await sleep(intervalMs, undefined, signal ? { signal } : {});
      const next = await ask();
      const changed = changesBetween(previous, next);
      if (changed.length > 0) {
        yield { type: "change", snapshot: next, previous, changed };
        previous = next;
      }
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
  }
}
