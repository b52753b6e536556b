/** What the task runner publishes (docs/events.md has the whole vocabulary). */
import type { ErrorCode } from "../core/errors.ts";

/** What a task is about, as its handler describes it (for people and for filters). */
export interface TaskLabel {
  /** e.g. "upload a/b.gcode", "finish a/b.gcode". */
  what: string;
  /** The sync it belongs to, when it is sync work. */
  sync?: string;
  /** A target's label, or "source" for work on a sync's source. */
  target?: string;
  /** The file it concerns. */
  path?: string;
  /** Bytes it moves, when known. */
  size?: number;
}

export type TaskRef = TaskLabel & { id: string; kind: string };

export interface TaskEvents {
  "task.started": TaskRef;
  /** At most every 200 ms per task: bytes the destination has taken. */
  "task.progress": TaskRef & { bytes: number };
  /** `skipped`: nothing was done, and why (already delivered, gone from the source, printer busy...). */
  "task.done": TaskRef & { bytes: number; ms: number; skipped?: string };
  /**
   * `retry`: tried again after a backoff; `parked`: waits (device away, printer busy) without
   * spending an attempt; `dead`: given up, kept for `ferry tasks retry`.
   */
  "task.failed": TaskRef & { code: ErrorCode; error: string; outcome: "retry" | "parked" | "dead" };
}
