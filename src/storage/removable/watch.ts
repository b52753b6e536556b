/**
 * Presence checks while a transfer runs: a real unplug turns reads and writes into EIO sooner or
 * later, but a stalled transfer, a lazy unmount or a staged test would not notice. A Watch looks
 * again every few hundred KiB and every 250 ms, and stops the transfer with UNAVAILABLE once the
 * volume is gone.
 */
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { toFerryError, type FerryError } from "../../core/errors.ts";

/** A fresh look (a realpath, two stats, the mount table) takes about 0.1 ms: four a second is nothing. */
const CHECK_EVERY_MS = 250;
/** A fraction of a second at USB speeds, and a check per 256 KiB costs far less than the copy. */
const CHECK_EVERY_BYTES = 256 * 1024;

/** Re-checks, while one transfer runs, that the volume is still where it was; aborts `signal` when not. */
export class Watch {
  readonly #controller = new AbortController();
  readonly signal = this.#controller.signal;
  readonly #check: () => Promise<FerryError | undefined>;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | undefined;

  constructor(check: () => Promise<FerryError | undefined>) {
    this.#check = check;
  }

  get lost(): FerryError | undefined {
    return this.signal.aborted ? (this.signal.reason as FerryError) : undefined;
  }

  start(): void {
    // Also catches a pull while the other side stalls and no bytes flow.
    this.#timer = setInterval(() => void this.#probe(), CHECK_EVERY_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /**
   * Counts bytes; throws once the volume is known to be gone. Every CHECK_EVERY_BYTES it starts a
   * fresh look without waiting for it, so the copy never stalls on the check: a pull is caught a
   * few chunks after the look that sees it.
   */
  tick(bytes: number): void {
    const lost = this.lost;
    if (lost) throw lost;
    this.#bytes += bytes;
    if (this.#bytes >= CHECK_EVERY_BYTES) {
      this.#bytes = 0;
      void this.#probe();
    }
  }

  #probe(): Promise<void> {
    this.#probing ??= this.#check()
      .then(
        (lost) => lost && this.#lose(lost),
        (error: unknown) => this.#lose(toFerryError(error, "UNAVAILABLE")),
      )
      .finally(() => (this.#probing = undefined));
    return this.#probing;
  }

  #lose(error: FerryError): void {
    if (this.signal.aborted) return;
    this.stop();
    this.#controller.abort(error);
  }
}

/** A write's source, passed through while the volume stays. */
export async function* watched(
  source: Readable | AsyncIterable<Uint8Array>,
  watch: Watch,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    watch.tick(bytes.length);
    yield bytes;
  }
}

/**
 * A read stream passed through while the volume stays, started and stopped with it; `explain`
 * words the errors of `inner` itself.
 */
export function watchedStream(inner: Readable, watch: Watch, explain: (error: unknown) => Error): Readable {
  const out = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        watch.tick(chunk.length);
        callback(null, chunk);
      } catch (error) {
        callback(toFerryError(error));
      }
    },
  });
  watch.signal.addEventListener("abort", () => out.destroy(watch.lost), { once: true });
  inner.on("error", (error) => out.destroy(explain(error)));
  out.on("close", () => {
    watch.stop();
    inner.destroy();
  });
  inner.pipe(out);
  watch.start();
  return out;
}
