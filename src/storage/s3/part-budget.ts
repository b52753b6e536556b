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
  readonly #limit: number;
  readonly #waiting: Waiter[] = [];
  /**
   * Part buffers given back, filled again by the next part: a new buffer per part left the spent
   * ones to V8's heuristics, 100 MB and more of them during a 1 GiB upload.
   */
  readonly #spare: Buffer[] = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
    this.#free = this.#limit;
  }

  /** A buffer of at least `length` bytes to fill one part into; `give` it back once sent. */
  take(length: number): Buffer {
    for (;;) {
      const spare = this.#spare.pop();
      if (spare === undefined) return Buffer.allocUnsafeSlow(length);
      if (spare.length >= length) return spare;
      // Another part size (a device's config changed under a running upload): not worth keeping.
    }
  }

  /** Takes back a buffer from `take` whose part is no longer needed (sent, or given up). */
  give(buffer: Buffer): void {
    if (this.#spare.length < this.#limit) this.#spare.push(buffer);
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
