/**
 * A token bucket that holds an upload to a byte rate: the caller awaits `take(n)` after each chunk
 * and the request stream stays paused meanwhile, so TCP pushes back on the client. Wall-clock
 * based (not the simulator's injected clock) and accurate over seconds: the wait is computed from
 * the debt, so timer overshoot never accumulates.
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Where the pacer reads the time and how it waits; the wall clock unless a test gives its own. */
export interface PacerTimer {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<unknown>;
}

const wallClock: PacerTimer = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

export class Pacer {
  readonly #rate: number;
  readonly #burst: number;
  readonly #timer: PacerTimer;
  #tokens: number;
  #last: number;

  /** `rate` in bytes per second. */
  constructor(rate: number, timer: PacerTimer = wallClock) {
    this.#rate = rate;
    this.#timer = timer;
    // Credit up to a quarter second, so a busy event loop (a hundred printers in one process)
    // does not lose time; start empty, so a transfer never runs ahead of the rate either.
    this.#burst = Math.max(64 * 1024, rate / 4);
    this.#tokens = 0;
    this.#last = timer.now();
  }

  async take(bytes: number): Promise<void> {
    const now = this.#timer.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
    this.#tokens -= bytes;
    if (this.#tokens < 0) await this.#timer.sleep((-this.#tokens / this.#rate) * 1000);
  }
}
