/**
 * At most `limit` attempts per key in a fixed window (sign-in: per user name and client address),
 * on the injected clock. In memory, per process: a guesser gets `limit` tries a minute from each
 * node at most, and the argon2id cost of each try stays the real brake.
 */
import type { Clock } from "../core/clock.ts";

/** Keys kept at most; past it, windows that have ended are swept (and, if need be, the oldest). */
const MAX_KEYS = 10_000;

export class AttemptLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(options: { limit: number; windowMs: number; clock: Clock }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#clock = options.clock;
  }

  /** Counts an attempt: 0 when it may go ahead, else the seconds until the key may try again. */
  attempt(key: string): number {
    const now = this.#clock.now();
    let window = this.#windows.get(key);
    if (!window || now - window.start >= this.#windowMs) {
      if (!window && this.#windows.size >= MAX_KEYS) this.#sweep(now);
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
    }
    if (window.count >= this.#limit)
      return Math.max(1, Math.ceil((window.start + this.#windowMs - now) / 1000));
    window.count += 1;
    return 0;
  }

  /** Forgets a key (a successful sign-in starts its count afresh). */
  reset(key: string): void {
    this.#windows.delete(key);
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows)
      if (now - window.start >= this.#windowMs) this.#windows.delete(key);
    // Maps keep insertion order: the first keys are the oldest windows.
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < MAX_KEYS) break;
      this.#windows.delete(key);
    }
  }
}
