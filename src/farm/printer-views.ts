/** A farm printer as the API shows it: its settings, what this node's worker saw, its job and farm state. */
import type { PrinterSettings } from "../config/index.ts";
import type { PrinterSnapshot, Temperature } from "../printers/driver.ts";
import type { Job } from "./jobs.ts";
import type { PrinterFarmState } from "./printer-states.ts";
import { isHeating, type PrinterWorker } from "./worker.ts";

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
  /** Why it is offline or refuses Ferry's credentials, as last seen. */
  offlineReason: string | null;
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

export interface ViewInput {
  name: string;
  kind: string;
  settings: PrinterSettings;
  /** This node's worker of the printer, if any. */
  worker: PrinterWorker | undefined;
  state: PrinterFarmState | undefined;
  job: Job | undefined;
  now: number;
}

export function printerView({ name, kind, settings, worker, state, job, now }: ViewInput): PrinterView {
  const seen = worker?.owned ? worker.snapshot : undefined;
  const leased = state?.leaseUntil !== null && state?.leaseUntil !== undefined && state.leaseUntil >= now;
  return {
    name,
    kind,
    model: settings.model ?? null,
    tags: settings.tags,
    autoClear: settings.autoClear,
    cameraUrl: settings.cameraUrl ?? null,
    connection: seen?.connection ?? null,
    activity: seen?.activity ?? null,
    rawState: seen?.rawState ?? null,
    offlineReason: seen?.offlineReason ?? null,
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
