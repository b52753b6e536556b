/**
 * Reading a file off the vehicle: one BurstReadFile streams the file from the highest byte seen;
 * what the burst lost is fetched with ReadFile, several requests in flight; then a new burst from
 * the highest byte seen, until the end. Chunks that arrive out of order wait in memory until the
 * bytes before them are there. When the vehicle stops answering (a reboot) or loses the session,
 * the read waits for its heartbeat, opens the file again and goes on from what it already holds:
 * nothing received is read twice. A whole-file read ends with CalcFileCRC32, compared with the
 * CRC32 of the bytes delivered; a mismatch fails the read instead of ending it.
 */
import { throwIfAborted } from "../../core/errors.ts";
import type { FtpClient } from "./client.ts";
import { FtpTimeout, isNak, mavFailure } from "./errors.ts";
import { DATA_BYTES, FTP_ERROR, hex32, OP, VehicleCrc, type FtpPayload } from "../../core/mavlink-ftp.ts";

export interface DownloadContext {
  client: FtpClient;
  device: string;
  /** Ferry path, for messages. */
  path: string;
  /** The path sent to the vehicle. */
  remote: string;
  window: number;
  /** Opens a session on the vehicle after it came back (waits for its heartbeat, resets sessions). */
  reconnect(signal?: AbortSignal): Promise<void>;
  signal?: AbortSignal;
}

/** Reconnects in a row without a byte of progress before the read gives up. */
const MAX_RECOVERIES = 8;

export interface DownloadStats {
  /** Bytes of file data that arrived, counted again when they arrive twice. */
  received: number;
  bursts: number;
  refills: number;
  recoveries: number;
}

export async function* download(
  ctx: DownloadContext,
  start: number,
  stats: DownloadStats = { received: 0, bursts: 0, refills: 0, recoveries: 0 },
): AsyncGenerator<Buffer> {
  const { client, signal } = ctx;
  const held = new Map<number, Buffer>();
  let next = start;
  let top = start;
  const crc = start === 0 ? new VehicleCrc() : undefined;
  let session = 0;
  let size = -1;

  const open = async () => {
    const answer = await client.request(
      { opcode: OP.OpenFileRO, data: Buffer.from(ctx.remote + "\0") },
      signal,
    );
    const opened = answer.data.length >= 4 ? answer.data.readUInt32LE(0) : -1;
    if (size >= 0 && opened !== size) {
      throw mavFailure(
        "PROTOCOL",
        ctx.device,
        ctx.path,
        `changed from ${size} to ${opened} bytes while it was read`,
        {
          retryable: true,
        },
      );
    }
    session = answer.session;
    size = opened;
    if (start > size) {
      throw mavFailure("PROTOCOL", ctx.device, ctx.path, `offset ${start} is past its end (${size} bytes)`);
    }
  };

  const store = (offset: number, data: Buffer) => {
    stats.received += data.length;
    const end = Math.min(offset + data.length, size);
    if (end <= next) return;
    const from = Math.max(offset, next);
    const piece = data.subarray(from - offset, end - offset);
    const known = held.get(from);
    if (!known || known.length < piece.length) held.set(from, piece);
    if (end > top) top = end;
  };

  /** The bytes from `next` on that are there, in order. */
  function* drain(): Generator<Buffer> {
    for (;;) {
      let chunk = held.get(next);
      if (chunk) held.delete(next);
      else {
        // A chunk that starts before `next` and reaches past it (bursts from another offset).
        for (const [offset, data] of held) {
          if (offset < next && offset + data.length > next) {
            held.delete(offset);
            chunk = data.subarray(next - offset);
            break;
          }
          if (offset + data.length <= next) held.delete(offset);
        }
      }
      if (!chunk) return;
      next += chunk.length;
      crc?.update(chunk);
      yield chunk;
    }
  }

  /** Missing ranges in [next, top), cut to message-sized requests. */
  const gaps = (): { offset: number; size: number }[] => {
    const out: { offset: number; size: number }[] = [];
    const sorted = [...held].sort((a, b) => a[0] - b[0]);
    let at = next;
    const add = (to: number) => {
      for (let o = at; o < to; o += DATA_BYTES) out.push({ offset: o, size: Math.min(DATA_BYTES, to - o) });
    };
    for (const [offset, data] of sorted) {
      if (offset > at) add(offset);
      at = Math.max(at, offset + data.length);
    }
    if (at < top) add(top);
    return out;
  };

  async function* burst(): AsyncGenerator<Buffer> {
    stats.bursts++;
    const queue: FtpPayload[] = [];
    let wake: (() => void) | undefined;
    const stop = client.onBurst((payload) => {
      if (payload.session !== session) return;
      queue.push(payload);
      wake?.();
    });
    try {
      try {
        await client.request({ opcode: OP.BurstReadFile, session, offset: top, size: DATA_BYTES }, signal);
      } catch (error) {
        if (isNak(error, FTP_ERROR.EOF)) return;
        throw error;
      }
      for (;;) {
        throwIfAborted(signal);
        const payload = queue.shift();
        if (!payload) {
          // Nothing for a while: the end of the burst (or the vehicle) is lost; refill takes over.
          const idle = Math.max(4 * client.timeoutMs, 100);
          const came = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => {
              resolve(false);
            }, idle);
            const onAbort = () => {
              clearTimeout(timer);
              resolve(true);
            };
            signal?.addEventListener("abort", onAbort, { once: true });
            wake = () => {
              clearTimeout(timer);
              signal?.removeEventListener("abort", onAbort);
              resolve(true);
            };
          });
          wake = undefined;
          if (!came) return;
          continue;
        }
        store(payload.offset, payload.data);
        yield* drain();
        if (payload.burstComplete || payload.offset + payload.data.length >= size) return;
      }
    } finally {
      stop();
    }
  }

  async function* refill(): AsyncGenerator<Buffer> {
    const wanted = gaps();
    if (wanted.length === 0) return;
    stats.refills += wanted.length;
    // A sliding window: each answer frees its slot at once, so one lost request (waiting for its
    // retry) does not hold up the others.
    const running = new Set<Promise<void>>();
    const ask = (range: { offset: number; size: number }) => {
      const done: Promise<void> = client
        .request({ opcode: OP.ReadFile, session, offset: range.offset, size: range.size }, signal)
        .then(
          (answer) => {
            store(answer.offset, answer.data);
          },
          (error: unknown) => {
            if (isNak(error, FTP_ERROR.EOF)) {
              throw mavFailure(
                "PROTOCOL",
                ctx.device,
                ctx.path,
                `ended at ${range.offset} of ${size} bytes`,
                {
                  retryable: true,
                },
              );
            }
            throw error;
          },
        )
        .finally(() => running.delete(done));
      // Raced below; a failure after the read gave up must not go unhandled.
      done.catch(() => undefined);
      running.add(done);
    };
    for (const range of wanted) {
      while (running.size >= ctx.window) {
        await Promise.race(running);
        yield* drain();
      }
      ask(range);
    }
    while (running.size > 0) {
      await Promise.race(running);
      yield* drain();
    }
  }

  let recoveries = 0;
  let progressAt = next;
  for (;;) {
    throwIfAborted(signal);
    try {
      if (size < 0) await open();
      // First what is missing below the highest byte seen, then a burst from there on.
      yield* refill();
      if (next >= size) break;
      const before = top;
      yield* burst();
      if (top === before) {
        // A burst that brought nothing and no error: count it like a loss of the vehicle.
        throw new FtpTimeout(OP.BurstReadFile, 1);
      }
    } catch (error) {
      const lost = error instanceof FtpTimeout || isNak(error, FTP_ERROR.InvalidSession);
      if (!lost || signal?.aborted) throw error;
      if (top > progressAt) recoveries = 0;
      if (++recoveries > MAX_RECOVERIES) throw error;
      stats.recoveries++;
      progressAt = top;
      // What arrived stays: the new session goes on from the first missing byte.
      await ctx.reconnect(signal);
      await open();
    }
  }
  client.post({ opcode: OP.TerminateSession, session });
  if (crc) {
    const answer = await client.request(
      { opcode: OP.CalcFileCRC32, data: Buffer.from(ctx.remote + "\0") },
      signal,
    );
    const theirs = answer.data.length >= 4 ? answer.data.readUInt32LE(0) : undefined;
    if (theirs !== crc.value) {
      throw mavFailure(
        "PROTOCOL",
        ctx.device,
        ctx.path,
        `CRC32 mismatch: the vehicle says ${theirs === undefined ? "nothing" : hex32(theirs)}, the bytes read give ${hex32(crc.value)}`,
        { retryable: true },
      );
    }
  }
}
