/**
 * Ferry's MAVLink FTP client: numbered requests, each answered (ACK or NAK) under the next sequence
 * number with the request's opcode in req_opcode; a lost request or answer is sent again with the
 * same number (the vehicle answers a repeated number with its last answer, without doing it twice).
 * The timeout follows the measured round trip, so a slow serial link does not cause a storm of
 * retries and a fast one does not wait long for a lost packet.
 */
import { setTimeout as delay } from "node:timers/promises";
import { FerryError, raceAbort } from "../../core/errors.ts";
import { FtpNak, FtpTimeout } from "./errors.ts";
import type { MavlinkLink } from "./link.ts";
import { encodePayload, OP, type FtpPayload } from "../../core/mavlink-ftp.ts";

export interface ClientTiming {
  /** Shortest and longest wait for an answer before a retry (ms). */
  minTimeoutMs: number;
  maxTimeoutMs: number;
  /** Tries of each request before the vehicle counts as gone. */
  tries: number;
}

export interface RequestFields {
  opcode: number;
  session?: number;
  offset?: number;
  /** ReadFile / BurstReadFile: bytes wanted (sent in `size` with no data). */
  size?: number;
  data?: Buffer;
}

interface Pending {
  opcode: number;
  resolve(payload: FtpPayload): void;
}

export class FtpClient {
  readonly #link: MavlinkLink;
  readonly #timing: ClientTiming;
  #seq = Math.floor(Math.random() * 0xffff);
  readonly #pending = new Map<number, Pending>();
  /** Where burst packets go while a burst runs. */
  #burst: ((payload: FtpPayload) => void) | undefined;
  #srtt: number | undefined;
  #rttvar = 0;
  /**
   * Doubles on each timeout and stays until an answer is measured again: answers slower than the
   * wait are never measured (a retry's answer could be the first try's), so without it a wait set
   * on an idle link would time out every request of a busy one.
   */
  #backoff = 1;
  #lock: Promise<void> = Promise.resolve();
  /** Requests sent again after a timeout, for tests and the benchmark. */
  retries = 0;

  constructor(link: MavlinkLink, timing: ClientTiming) {
    this.#link = link;
    this.#timing = timing;
    link.on("ftp", (payload) => {
      this.#receive(payload);
    });
  }

  get link(): MavlinkLink {
    return this.#link;
  }

  /** Waits for the vehicle's one file session; call the result to give it back. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    const before = this.#lock;
    let release!: () => void;
    this.#lock = new Promise((resolve) => (release = resolve));
    try {
      await raceAbort(before, signal);
    } catch (error) {
      // Our turn still comes after `before`: pass it on at once.
      void before.then(release);
      throw error;
    }
    return release;
  }

  #receive(payload: FtpPayload): void {
    if (payload.opcode !== OP.Ack && payload.opcode !== OP.Nak) return;
    if (payload.reqOpcode === OP.BurstReadFile && payload.opcode === OP.Ack) {
      this.#burst?.(payload);
      // The first packet of a burst is also the answer to the request (below).
    }
    const pending = this.#pending.get(payload.seq);
    if (!pending || pending.opcode !== payload.reqOpcode) return; // a stale answer to a retried request
    this.#pending.delete(payload.seq);
    pending.resolve(payload);
  }

  /** The current wait for an answer: smoothed round trip plus four deviations, within limits. */
  get timeoutMs(): number {
    const { minTimeoutMs, maxTimeoutMs } = this.#timing;
    if (this.#srtt === undefined) return maxTimeoutMs;
    return Math.min(maxTimeoutMs, Math.max(minTimeoutMs, this.#srtt + 4 * this.#rttvar) * this.#backoff);
  }

  #sample(ms: number): void {
    this.#backoff = 1;
    if (this.#srtt === undefined) {
      this.#srtt = ms;
      this.#rttvar = ms / 2;
      return;
    }
    this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
    this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
  }

  /**
   * Sends a request and resolves with its ACK; a NAK rejects with FtpNak, no answer after every
   * try with FtpTimeout. `tries` overrides the configured count (1: fire once, e.g. a reset).
   */
  async request(
    fields: RequestFields,
    signal?: AbortSignal,
    tries = this.#timing.tries,
  ): Promise<FtpPayload> {
    const seq = this.#seq;
    this.#seq = (this.#seq + 1) & 0xffff;
    const frame = encodePayload({
      seq,
      opcode: fields.opcode,
      session: fields.session ?? 0,
      offset: fields.offset ?? 0,
      data: fields.data ?? Buffer.alloc(0),
    });
    if (fields.size !== undefined) frame[4] = fields.size;
    const answerSeq = (seq + 1) & 0xffff;
    let settle!: (payload: FtpPayload) => void;
    const answered = new Promise<FtpPayload>((resolve) => (settle = resolve));
    this.#pending.set(answerSeq, { opcode: fields.opcode, resolve: settle });
    try {
      for (let attempt = 1; attempt <= tries; attempt++) {
        if (signal?.aborted) throw new FerryError("ABORTED", "operation aborted", { cause: signal.reason });
        const sentAt = performance.now();
        this.#link.sendFtp(frame);
        // Each timeout doubled the wait (backoff), up to max_timeout_ms.
        const wait = this.timeoutMs;
        const timer = new AbortController();
        const onAbort = () => {
          timer.abort();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        const answer = await Promise.race([
          answered,
          delay(wait, undefined, { signal: timer.signal }).catch(() => undefined),
        ]);
        timer.abort();
        signal?.removeEventListener("abort", onAbort);
        if (answer) {
          // Only first tries measure the round trip: an answer to a retry may be the first try's.
          if (attempt === 1) this.#sample(performance.now() - sentAt);
          if (answer.opcode === OP.Nak) {
            throw new FtpNak(
              fields.opcode,
              answer.data[0] ?? 0,
              answer.data.length > 1 ? answer.data[1] : undefined,
            );
          }
          return answer;
        }
        if (attempt < tries) this.retries++;
        this.#backoff = Math.min(this.#backoff * 2, 64);
      }
      throw new FtpTimeout(fields.opcode, tries);
    } finally {
      this.#pending.delete(answerSeq);
    }
  }

  /** Sends a request without waiting for its answer (TerminateSession, whose answer may be ignored). */
  post(fields: RequestFields): void {
    void this.request(fields, undefined, 1).catch(() => undefined);
  }

  /** Routes burst packets to `listener` until the returned function is called. */
  onBurst(listener: (payload: FtpPayload) => void): () => void {
    this.#burst = listener;
    return () => {
      if (this.#burst === listener) this.#burst = undefined;
    };
  }
}
