/** What the farm's parts share: the repositories, the registry, the queue and runner, time and the bus. */
import type { Publisher } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { TaskRunner } from "../tasks/runner.ts";
import type { FarmEvents } from "./events.ts";
import type { PrinterStates } from "./printer-states.ts";
import type { UploadContext } from "./upload.ts";

export interface FarmContext extends UploadContext {
  states: PrinterStates;
  runner: TaskRunner;
  bus: Publisher<FarmEvents>;
  logger: Logger;
  /** This node's name: the holder of its printers' leases. */
  node: string;
  /** How often a worker looks at a printer that pushes nothing. */
  intervalMs: number;
  /** How long a printer's lease lasts unless renewed (every tick renews it). */
  leaseMs: number;
  /** How long a requested start may take to show on the printer. */
  startGraceMs: number;
  /** A printer may have become free (or a job queued again): schedule soon. */
  scheduleSoon(): void;
}
