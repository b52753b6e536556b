/**
 * A remote file as a Readable, with several READ requests in flight at explicit offsets (one at a
 * time, a download waits a round trip per chunk). Chunks are pushed in file order whatever order
 * the answers come in. It reads up to the size the file had when it was opened; a file that
 * shrinks meanwhile ends the stream early (the engine's size check catches that).
 */
import { Readable } from "node:stream";
import type { FerryError } from "../../core/errors.ts";
import type { Lease } from "./connection.ts";

const CHUNK_BYTES = 64 * 1024;
/** Reads in flight: 1 MiB ahead, enough to fill a fast link without hogging memory. */
const IN_FLIGHT = 16;

export interface ReadStreamOptions {
  lease: Lease;
  handle: Buffer;
  start: number;
  size: number;
  /** Translates a failed read. */
  fail: (error: unknown) => FerryError;
}

export class SftpReadStream extends Readable {
  readonly #options: ReadStreamOptions;
  readonly #queue: Promise<Buffer>[] = [];
  readonly #pending = new Set<Promise<unknown>>();
  #next: number;
  #pumping = false;
  #released = false;

  constructor(options: ReadStreamOptions) {
    super({ highWaterMark: CHUNK_BYTES * 4 });
    this.#options = options;
    this.#next = options.start;
  }

  override _read(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        this.#fill();
        const head = this.#queue.shift();
        if (head === undefined) {
          this.#end();
          return;
        }
        const chunk = await head;
        if (this.destroyed) return;
        if (chunk.length === 0) {
          // The file ended before its size: stop here.
          this.#next = this.#options.size;
          this.#queue.length = 0;
          this.#end();
          return;
        }
        this.#fill();
        if (!this.push(chunk)) return;
      }
    } catch (error) {
      this.destroy(this.#options.fail(error));
    } finally {
      this.#pumping = false;
    }
  }

  #fill(): void {
    const { size } = this.#options;
    while (this.#queue.length < IN_FLIGHT && this.#next < size) {
      const length = Math.min(CHUNK_BYTES, size - this.#next);
      const read = this.#readFully(this.#next, length);
      const tracked = read.catch(() => undefined);
      this.#pending.add(tracked);
      void tracked.then(() => this.#pending.delete(tracked));
      this.#queue.push(read);
      this.#next += length;
    }
  }

  /** `length` bytes at `position`, fewer only at the end of the file. */
  async #readFully(position: number, length: number): Promise<Buffer> {
    const { lease, handle } = this.#options;
    const buffer = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const bytes = await lease.channel.read(handle, buffer, got, length - got, position + got);
      if (bytes === 0) break;
      got += bytes;
    }
    return got === length ? buffer : buffer.subarray(0, got);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release();
    callback(error);
  }

  /** Closes the handle once every read is answered, then gives the channel back. */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    const { lease, handle } = this.#options;
    void Promise.all(this.#pending).then(async () => {
      await lease.channel.close(handle).catch(() => undefined);
      lease.release();
    });
  }

  #end(): void {
    this.#release();
    this.push(null);
  }
}
