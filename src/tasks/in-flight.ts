/**
 * The tasks running on this node now, with how far each has come: bytes, a rate smoothed over
 * the last seconds and the time left. Kept from the runner's events, for the API and displays.
 */
import type { Subscriber } from "../core/events.ts";
import type { TaskEvents, TaskRef } from "./events.ts";

export interface InFlight extends TaskRef {
  startedAt: number;
  /** Bytes the destination has taken. */
  bytes: number;
  /** Bytes per second, smoothed; null until two progress reports have come. */
  rate: number | null;
  /** Seconds left at that rate, when the size is known. */
  etaS: number | null;
}

/** Weight of the newest rate sample: about the last 2 s of reports (one each 200 ms) count. */
const SMOOTHING = 0.1;

export class InFlightTasks {
  readonly #tasks = new Map<string, InFlight & { lastAt: number }>();
  readonly #off: (() => void)[];

  constructor(bus: Subscriber<TaskEvents>) {
    const end = ({ payload }: { payload: TaskRef }) => this.#tasks.delete(payload.id);
    this.#off = [
      bus.on("task.started", ({ at, payload }) =>
        this.#tasks.set(payload.id, {
          ...payload,
          startedAt: at,
          lastAt: at,
          bytes: 0,
          rate: null,
          etaS: null,
        }),
      ),
      bus.on("task.progress", ({ at, payload }) => {
        const task = this.#tasks.get(payload.id);
        if (!task) return;
        const seconds = (at - task.lastAt) / 1000;
        if (seconds > 0) {
          const sample = Math.max(0, payload.bytes - task.bytes) / seconds;
          task.rate = task.rate === null ? sample : task.rate + SMOOTHING * (sample - task.rate);
        }
        task.bytes = payload.bytes;
        task.lastAt = at;
        task.etaS =
          task.size !== undefined && task.rate !== null && task.rate > 0
            ? Math.max(0, task.size - task.bytes) / task.rate
            : null;
      }),
      bus.on("task.done", end),
      bus.on("task.failed", end),
    ];
  }

  /** Oldest first. */
  list(): InFlight[] {
    return [...this.#tasks.values()].map(({ lastAt: _, ...task }) => ({ ...task }));
  }

  close(): void {
    for (const off of this.#off) off();
  }
}
