/**
 * The part buffers one device may hold at once, shared by all its uploads: memory stays bounded
 * (budget × part size) however many big files go to it together.
 */
import { throwIfAborted } from "../../core/errors.ts";

interface Waiter {
  grant(): void;
}

export class PartBudget {
  #free: number;
  readonly #waiting: Waiter[] = [];

  constructor(limit: number) {
    this.#free = Math.max(1, Math.floor(limit));
  }

  /** Resolves with the function that gives the buffer back, once one may be filled; ABORTED if the signal fires first. */
  acquire(signal: AbortSignal): Promise<() => void> {
    throwIfAborted(signal);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(this.#releaser());
        },
      };
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        try {
          throwIfAborted(signal);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Straight to the next waiter, so a newcomer cannot jump the queue.
      const next = this.#waiting.shift();
      if (next) next.grant();
      else this.#free++;
    };
  }
}
