/**
 * A token bucket that holds an upload to a byte rate: the caller awaits `take(n)` after each chunk
 * and the request stream stays paused meanwhile, so TCP pushes back on the client. Wall-clock
 * based (not the simulator's injected clock) and accurate over seconds: the wait is computed from
 * the debt, so timer overshoot never accumulates.
 */
import { setTimeout as sleep } from "node:timers/promises";

export class Pacer {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();

  /** `rate` in bytes per second. */
  constructor(rate: number) {
    this.#rate = rate;
    this.#burst = Math.max(1, Math.min(64 * 1024, rate / 20));
    this.#tokens = this.#burst;
  }

  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
    this.#tokens -= bytes;
    if (this.#tokens < 0) await sleep((-this.#tokens / this.#rate) * 1000);
  }
}
