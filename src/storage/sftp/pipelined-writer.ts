/**
 * Writes a stream to an open remote file with many SFTP WRITE requests in flight at explicit
 * offsets: a streamed put waits one round trip per chunk and is ~100x slower. Like ssh2's fastPut,
 * but from a stream of unknown chunking (coalesced into CHUNK_BYTES requests) and with a window
 * in bytes instead of a count of requests: nothing is ever sent more than WINDOW_BYTES past the
 * acknowledged prefix. Servers may complete writes out of order; `onAcked` only ever reports the
 * contiguous prefix whose every write was acknowledged, and the window bounds where a hole in the
 * remote file can be (see upload.ts for how a resume uses that).
 */
import { Readable } from "node:stream";
import { FerryError, toFerryError } from "../../core/errors.ts";
import type { Channel } from "./channel.ts";

/** Bytes per WRITE request: measured best with OpenSSH (32 KiB × 64 was ~30% slower). */
export const CHUNK_BYTES = 64 * 1024;
/** Bytes in flight past the acknowledged prefix (32 requests). */
export const WINDOW_BYTES = 32 * CHUNK_BYTES;
/** Progress is reported at least this often (and whenever nothing is in flight). */
const REPORT_BYTES = 1024 * 1024;

export interface PipelinedWrite {
  channel: Channel;
  handle: Buffer;
  source: Readable | AsyncIterable<Uint8Array | string>;
  /** Offset of the source's first byte in the file. */
  start: number;
  /** The file's size: the source must end exactly here. */
  end: number;
  signal?: AbortSignal | undefined;
  /** The contiguous prefix of the file every write of which the server acknowledged. */
  onAcked?: (bytes: number) => void;
  /** The source gave more or fewer bytes than `end - start`. */
  mismatch: (got: string) => FerryError;
}

interface InFlight {
  end: number;
  done: boolean;
}

export class PipelinedWriter {
  readonly #options: PipelinedWrite;
  readonly #inFlight: InFlight[] = [];
  #acked: number;
  #reported: number;
  #outstanding = 0;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  #settle: (() => void) | undefined;
  /** Resolves once the source ended and its last byte went out (acknowledged or not). */
  readonly allSent: Promise<void>;
  #allSent: () => void = () => undefined;
  /** Rejects the waits in progress at a failure (each removes itself once it settles). */
  readonly #interrupts = new Set<(error: Error) => void>();

  constructor(options: PipelinedWrite) {
    this.#options = options;
    this.allSent = new Promise<void>((resolve) => (this.#allSent = resolve));
    this.#acked = options.start;
    this.#reported = options.start;
  }

  /** The acknowledged contiguous prefix. */
  get acked(): number {
    return this.#acked;
  }

  /** Resolves once no write is in flight any more (after a failure too). */
  settled(): Promise<void> {
    if (this.#outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#settle = resolve));
  }

  /** Sends the source; resolves when every byte is acknowledged. */
  async run(): Promise<void> {
    const { source, signal, end, start } = this.#options;
    const onAbort = () => this.#fail(new FerryError("ABORTED", "upload aborted", { cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // At most what ssh2 sends in one request: it copies that into the packet at once, so a
      // source's chunk can go out without a copy of ours, and our buffers are reused at once.
      const chunk = Math.min(CHUNK_BYTES, this.#options.channel.maxWriteBytes);
      let position = start;
      const buffer = Buffer.allocUnsafe(Math.min(chunk, Math.max(end - start, 1)));
      let filled = 0;
      const iterator = (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
      for (;;) {
        const next = await this.#race(iterator.next());
        if (next.done === true) break;
        const value = next.value;
        let data = typeof value === "string" ? Buffer.from(value) : toBuffer(value);
        if (position + filled + data.length > end) throw this.#options.mismatch("more");
        while (filled === 0 && data.length >= buffer.length) {
          await this.#send(data, buffer.length, position);
          position += buffer.length;
          data = data.subarray(buffer.length);
        }
        while (data.length > 0) {
          const take = Math.min(buffer.length - filled, data.length);
          data.copy(buffer, filled, 0, take);
          filled += take;
          data = data.subarray(take);
          if (filled === buffer.length) {
            await this.#send(buffer, filled, position);
            position += filled;
            filled = 0;
          }
        }
      }
      if (filled > 0) {
        await this.#send(buffer, filled, position);
        position += filled;
      }
      if (position !== end) throw this.#options.mismatch(`only ${position - start}`);
      this.#allSent();
      while (this.#outstanding > 0) await this.#event();
      this.#throwIfFailed();
    } catch (error) {
      this.#fail(error);
      if (source instanceof Readable) source.destroy();
      throw this.#failure ?? toError(error);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Sends `length` bytes from the start of `buffer`, which is free again when this resolves. */
  async #send(buffer: Buffer, length: number, position: number): Promise<void> {
    // Never more than the window past the acknowledged prefix: holes stay within it.
    while (position + length - this.#acked > WINDOW_BYTES) await this.#event();
    this.#throwIfFailed();
    const entry: InFlight = { end: position + length, done: false };
    this.#inFlight.push(entry);
    this.#outstanding++;
    this.#options.channel.write(this.#options.handle, buffer, 0, length, position).then(
      () => this.#done(entry, undefined),
      (error: unknown) => this.#done(entry, error),
    );
  }

  #done(entry: InFlight, error: unknown): void {
    this.#outstanding--;
    if (error === undefined) entry.done = true;
    else this.#fail(error);
    while (this.#inFlight[0]?.done === true) {
      this.#acked = this.#inFlight[0].end;
      this.#inFlight.shift();
    }
    const idle = this.#outstanding === 0;
    if (this.#failure === undefined && (this.#acked - this.#reported >= REPORT_BYTES || idle)) {
      if (this.#acked > this.#reported) {
        this.#reported = this.#acked;
        this.#options.onAcked?.(this.#acked);
      }
    }
    if (idle) this.#settle?.();
    this.#poke();
  }

  #fail(error: unknown): void {
    if (this.#failure === undefined) {
      this.#failure = toError(error);
      const failure = this.#failure;
      for (const interrupt of this.#interrupts) interrupt(failure);
      this.#interrupts.clear();
    }
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Waits for the next write to finish (or a failure). */
  async #event(): Promise<void> {
    this.#throwIfFailed();
    await this.#race(new Promise<void>((resolve) => (this.#wake = resolve)));
  }

  /**
   * `promise`, or the failure (an abort included) as soon as there is one. Not a `Promise.race`
   * against one long-lived failure promise: each race leaves a reaction on it that holds its
   * result (a chunk of the source) until that promise settles, which on success is never, so a
   * whole upload stayed in memory.
   */
  #race<T>(promise: Promise<T>): Promise<T> {
    if (this.#failure !== undefined) {
      // Its own rejection (a source destroyed meanwhile: premature close) must not go unhandled.
      promise.catch(() => undefined);
      return Promise.reject(this.#failure);
    }
    return new Promise<T>((resolve, reject) => {
      this.#interrupts.add(reject);
      promise.then(
        (value) => {
          this.#interrupts.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.#interrupts.delete(reject);
          reject(toError(error));
        },
      );
    });
  }
}

function toError(failure: unknown): Error {
  return failure instanceof Error ? failure : toFerryError(failure);
}

/** A Buffer view of the chunk, without copying. */
function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
