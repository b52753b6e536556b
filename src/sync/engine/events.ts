/** What the durable engine publishes; `ferry serve` prints it, the server and dashboard subscribe. */
import type { ErrorCode } from "../../core/errors.ts";
import type { TaskCounts } from "../../tasks/queue.ts";
import type { DeviceState } from "./checker.ts";

export interface TaskRef {
  id: string;
  kind: string;
  sync: string;
  /** Target label, or the source for source-side tasks. */
  target: string;
  /** What the task does, e.g. "upload a/b.gcode". */
  what: string;
}

export interface EngineEvents {
  "engine.started": { syncs: string[]; devices: string[] };
  "engine.stopped": { released: number };
  "scan.done": { sync: string; reason: string; enqueued: number; targets: number };
  "scan.failed": { sync: string; reason: string; error: string };
  "task.started": TaskRef;
  "task.progress": TaskRef & { bytes: number; size: number };
  "task.done": TaskRef & { bytes: number; ms: number; skipped?: string };
  "task.failed": TaskRef & { code: ErrorCode; error: string; outcome: "retry" | "parked" | "dead" };
  "device.state": { device: string; state: DeviceState; detail: string };
  "source.removed": { sync: string; path: string };
  "queue.counts": TaskCounts;
}
