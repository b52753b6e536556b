/**
 * Cuts a byte stream into buffers of exact lengths (the parts of a multipart upload), each filled
 * with one copy, and says whether the stream had as many bytes as announced, no more, no less.
 */
import { Readable } from "node:stream";
import { raceAbort } from "../../core/errors.ts";

export type Source = Readable | AsyncIterable<Uint8Array>;

export class PartReader {
  readonly #source: Source;
  readonly #iterator: AsyncIterator<Uint8Array | string>;
  #pending: Buffer | undefined;
  /** Bytes taken from the source so far. */
  received = 0;

  constructor(source: Source) {
    this.#source = source;
    this.#iterator = (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
  }

  async #next(signal: AbortSignal | undefined): Promise<Buffer | undefined> {
    if (this.#pending) {
      const chunk = this.#pending;
      this.#pending = undefined;
      return chunk;
    }
    for (;;) {
      // A stalled source must not hold up an abort.
      const next = await raceAbort(this.#iterator.next(), signal);
      if (next.done === true) return undefined;
      const value = next.value;
      const chunk =
        typeof value === "string"
          ? Buffer.from(value)
          : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.received += chunk.length;
      if (chunk.length > 0) return chunk;
    }
  }

  /** The next `length` bytes (in `into` when given), or undefined (with `received` telling how many came) when the source ends first. */
  async read(length: number, signal: AbortSignal | undefined, into?: Buffer): Promise<Buffer | undefined> {
    const part = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = await this.#next(signal);
      if (chunk === undefined) return undefined;
      const take = Math.min(chunk.length, length - filled);
      chunk.copy(part, filled, 0, take);
      filled += take;
      if (take < chunk.length) this.#pending = chunk.subarray(take);
    }
    return part;
  }

  /** Whether the source has ended with nothing left over. */
  async ended(signal: AbortSignal | undefined): Promise<boolean> {
    return (await this.#next(signal)) === undefined;
  }

  /** Stops the source (also one that stalls in the middle of a read). */
  close(): void {
    if (this.#source instanceof Readable) this.#source.destroy();
    else void this.#iterator.return?.().catch(() => undefined);
  }
}
