/**
 * Cuts a source stream into request bodies of exact sizes (one PUT per chunk), counting as it goes.
 * The last body holds its final byte back until it knows the source ends there: a source longer
 * than announced fails before the server has the whole body, so it never stores the file.
 */
import type { Readable } from "node:stream";
import type { FerryError } from "../../core/errors.ts";

export class ByteReader {
  readonly #iterator: AsyncIterator<Uint8Array | string>;
  /** Builds the error for a source that gave `got` ("more", "only N") instead of the announced size. */
  readonly #mismatch: (got: string) => FerryError;
  #pending: Uint8Array | undefined;
  #ended = false;
  #failure: unknown;
  /** Bytes of the file given out so far (from the upload's first byte, not this source's). */
  #position: number;

  constructor(
    source: Readable | AsyncIterable<Uint8Array>,
    start: number,
    mismatch: (got: string) => FerryError,
  ) {
    this.#iterator = (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
    this.#position = start;
    this.#mismatch = mismatch;
  }

  /** Why the source failed (its own error, or a size mismatch), if it did. */
  get failure(): unknown {
    return this.#failure;
  }

  #fail(error: unknown): never {
    this.#failure = error;
    throw error;
  }

  async #next(): Promise<Uint8Array | undefined> {
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      return pending;
    }
    while (!this.#ended) {
      let step: IteratorResult<Uint8Array | string>;
      try {
        step = await this.#iterator.next();
      } catch (error) {
        this.#ended = true;
        return this.#fail(error);
      }
      if (step.done === true) {
        this.#ended = true;
        break;
      }
      const chunk = typeof step.value === "string" ? Buffer.from(step.value) : step.value;
      if (chunk.length > 0) return chunk;
    }
    return undefined;
  }

  /** Fails when the source has bytes left: it was longer than announced. */
  async #expectEnd(): Promise<void> {
    const extra = await this.#next();
    if (extra !== undefined) this.#fail(this.#mismatch("more"));
  }

  /** Exactly `length` bytes of the source; with `last`, the source must end right after them. */
  async *take(length: number, last: boolean): AsyncGenerator<Uint8Array> {
    let left = length;
    while (left > 0) {
      const chunk = await this.#next();
      if (chunk === undefined) this.#fail(this.#mismatch(`only ${this.#position}`));
      if (chunk.length > left) {
        if (last) this.#fail(this.#mismatch("more"));
        this.#pending = chunk.subarray(left);
        this.#position += left;
        left = 0;
        yield chunk.subarray(0, chunk.length - this.#pending.length);
        return;
      }
      left -= chunk.length;
      this.#position += chunk.length;
      // Hold the final bytes back until the source has said it ends.
      if (left === 0 && last) await this.#expectEnd();
      yield chunk;
    }
    if (length === 0 && last) await this.#expectEnd();
  }

  /** Makes sure the source ends here (for uploads with nothing left to send). */
  async end(): Promise<void> {
    for await (const _ of this.take(0, true)) {
      // nothing: take(0) yields no bytes
    }
  }
}
