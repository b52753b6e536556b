/**
 * The PrinterDriver contract: a printer seen through one normalized snapshot, plus its files as a
 * StorageAdapter so an upload to a printer is an ordinary transfer.
 */
import type { z } from "zod";
import type { AdapterContext, StorageAdapter } from "../storage/adapter.ts";

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
export type Activity = (typeof ACTIVITIES)[number];

/** Activities in which nothing runs on the printer, so files may be changed (`when: idle`). */
export const QUIET_ACTIVITIES: ReadonlySet<Activity> = new Set(["idle", "finished", "stopped"]);

export interface JobSnapshot {
  /** The printed file as a path of the printer's storage adapter (long names), when known. */
  file?: string;
  /** 0..1 */
  progress?: number;
  elapsedS?: number;
  remainingS?: number;
}

export interface Temperature {
  name: string;
  actual: number;
  target?: number;
}

export interface PrinterSnapshot {
  connection: "online" | "offline";
  activity: Activity;
  /** The device's own state word (e.g. PrusaLink's "PRINTING"), for display. */
  rawState?: string;
  job?: JobSnapshot;
  temperatures: Temperature[];
  /** ms since the epoch */
  observedAt: number;
  /** Why the printer is offline (the network or HTTP error), for messages. */
  offlineReason?: string;
}

export interface PrinterCapabilities {
  pause: boolean;
  resume: boolean;
  cancel: boolean;
}

export interface PrinterDriver {
  readonly kind: string;
  readonly name: string;
  readonly capabilities: Readonly<PrinterCapabilities>;
  /** Never throws for an unreachable printer: it answers `connection: "offline"` instead. */
  snapshot(options?: { signal?: AbortSignal }): Promise<PrinterSnapshot>;
  startJob(path: string, options?: { signal?: AbortSignal }): Promise<void>;
  pause?(options?: { signal?: AbortSignal }): Promise<void>;
  resume?(options?: { signal?: AbortSignal }): Promise<void>;
  cancel?(options?: { signal?: AbortSignal }): Promise<void>;
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

export function definePrinterDriver<Options>(
  definition: PrinterDriverDefinition<Options>,
): PrinterDriverDefinition<Options> {
  return Object.freeze({ ...definition, capabilities: Object.freeze({ ...definition.capabilities }) });
}
