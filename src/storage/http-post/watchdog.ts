/**
 * A timer that fails a request when nothing moves for `ms`: connecting, sending (every chunk the
 * connection takes is progress) or waiting for the answer. undici's own header timer cannot do
 * this: it runs while a slow source is still sending.
 */
export class Watchdog {
  readonly controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.#timer = setTimeout(() => {
      this.controller.abort(new Error(`no progress for ${ms / 1000} s`));
    }, ms);
    this.#timer.unref();
  }

  /** Something moved: the full time again from now. */
  poke(): void {
    this.#timer.refresh();
  }

  get fired(): boolean {
    return this.controller.signal.aborted;
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
