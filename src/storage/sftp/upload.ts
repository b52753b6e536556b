/**
 * Resumable uploads over SFTP: the bytes go to `.ferry-<16 hex>.part` in the target's folder with
 * pipelined writes at explicit offsets, then the temp file is renamed over the target (atomically
 * with posix-rename@openssh.com). The token names the temp file and the version of the source
 * (size, modTime); the server's size of the temp file says how much of it is there.
 *
 * How much to trust that size: the writer keeps at most WINDOW_BYTES in flight past the
 * acknowledged prefix, and a server may complete writes out of order, so after a drop the temp
 * file can have holes, but only within the last window below its end. A resume therefore starts
 * at max(stored, size on the server − window) — `stored` being the acknowledged prefix the token
 * was issued with — and never past the server's size. A temp file shorter than `stored` lost data
 * (a server crash before its page cache reached the disk): the upload starts over.
 */
import { Readable } from "node:stream";
import { FerryError, raceAbort, throwIfAborted } from "../../core/errors.ts";
import { basename, dirname, joinPath, pathKey } from "../../core/paths.ts";
import type { Entry, FinishOptions, OpOptions, Upload, UploadToken } from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import type { Channel } from "./channel.ts";
import type { Lease } from "./connection.ts";
import { STATUS, isConnectionLoss, sftpFailure, sftpStatus } from "./errors.ts";
import { TEMP_NAME, tempName } from "./names.ts";
import { PipelinedWriter, WINDOW_BYTES } from "./pipelined-writer.ts";

const OPEN_WRITE = 0x02;
const OPEN_CREATE = 0x08;
const OPEN_TRUNCATE = 0x10;
const nowSeconds = () => Math.floor(Date.now() / 1000);
/** How long `abort()` waits for writes still in flight before it removes the temp file. */
const SETTLE_MS = 5000;

/** What the storage gives an upload. */
export interface UploadHost {
  readonly name: string;
  /** The server's absolute path of a Ferry path. */
  remote(path: string, signal?: AbortSignal): Promise<string>;
  lease(signal?: AbortSignal): Promise<Lease>;
  /** mkdir -p of a Ferry folder on this channel. */
  makeFolders(channel: Channel, folder: string): Promise<void>;
  /** `error` of a request about `path` as a FerryError (asks the server whether its disk is full). */
  explain(channel: Channel, error: unknown, path: string, signal?: AbortSignal): Promise<FerryError>;
  /** Puts `from` in place of `to` (replacing it). */
  replace(channel: Channel, from: string, to: string): Promise<void>;
}

/** The token of an SFTP upload (JSON). */
export interface SftpToken {
  v: 1;
  kind: "sftp";
  /** Ferry path of the target and of the temp file beside it. */
  target: string;
  temp: string;
  size: number;
  modTime: number | null;
  /** The acknowledged contiguous prefix when the token was issued. */
  stored: number;
  /** The writer's window: holes in the temp file lie within this many bytes below its end. */
  window: number;
}

export interface UploadPlan {
  target: string;
  temp: string;
  size: number;
  modTime: number | undefined;
  offset: number;
}

/** A fresh plan for `target`, with a new temp name. */
export function freshPlan(target: string, size: number, modTime: number | undefined): UploadPlan {
  return { target, temp: joinPath(dirname(target), tempName()), size, modTime, offset: 0 };
}

/** The token if it is one of ours, for `target`; else undefined (not ours to touch). */
export function tokenFor(token: UploadToken | undefined, target: string): SftpToken | undefined {
  if (token === undefined) return undefined;
  const t = token as Partial<SftpToken>;
  const integer = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (t.v !== 1 || t.kind !== "sftp" || typeof t.target !== "string" || typeof t.temp !== "string")
    return undefined;
  if (!integer(t.size) || !integer(t.stored) || !integer(t.window) || t.stored > t.size) return undefined;
  if (t.modTime !== null && typeof t.modTime !== "number") return undefined;
  if (pathKey(t.target) !== pathKey(target)) return undefined;
  // Only a temp name of ours beside the target is ever touched on the token's word.
  if (dirname(t.temp) !== dirname(target) || !TEMP_NAME.test(basename(t.temp))) return undefined;
  return t as SftpToken;
}

/**
 * Where to resume, given the token (for this target) and the temp file's size on the server
 * (undefined when it is gone): an offset, or "stale" when the partial must be thrown away.
 */
export function resumeOffset(
  token: SftpToken,
  size: number,
  modTime: number | undefined,
  remote: number | undefined,
): number | "stale" | "gone" {
  if (token.size !== size || token.modTime !== (modTime ?? null)) return "stale";
  if (remote === undefined) return "gone";
  if (remote > size || remote < token.stored) return "stale";
  return Math.min(remote, Math.max(token.stored, remote - token.window));
}

export class SftpUpload implements Upload {
  readonly offset: number;
  readonly #host: UploadHost;
  readonly #plan: UploadPlan;
  #token: SftpToken;
  #finished = false;
  /** Resolves when the last finish's requests are all answered and its handle closed. */
  #settled: Promise<void> = Promise.resolve();

  constructor(host: UploadHost, plan: UploadPlan, stored: number) {
    this.#host = host;
    this.#plan = plan;
    this.offset = plan.offset;
    this.#token = {
      v: 1,
      kind: "sftp",
      target: plan.target,
      temp: plan.temp,
      size: plan.size,
      modTime: plan.modTime ?? null,
      stored,
      window: WINDOW_BYTES,
    };
  }

  get token(): UploadToken {
    return { ...this.#token };
  }

  async finish(rest: Readable | AsyncIterable<Uint8Array>, options: FinishOptions = {}): Promise<Entry> {
    const { signal, onStored } = options;
    const { target, temp, size, modTime, offset } = this.#plan;
    const device = this.#host.name;
    if (this.#finished) {
      closeSource(rest);
      throw sftpFailure("PROTOCOL", device, target, "this upload was already finished");
    }
    const pending: Promise<unknown>[] = [];
    const track = <T>(promise: Promise<T>): Promise<T> => {
      pending.push(promise.catch(() => undefined));
      return promise;
    };
    let lease: Lease;
    try {
      throwIfAborted(signal);
      lease = await this.#host.lease(signal);
    } catch (error) {
      // The server is away: the source was never read, and its file must not stay open.
      closeSource(rest);
      throw error;
    }
    let handle: Buffer;
    let opening: Promise<Buffer> | undefined;
    let closed = false;
    try {
      const remoteTemp = await this.#host.remote(temp, signal);
      const open = (channel: Channel) => {
        opening = track(this.#openTemp(channel, remoteTemp, offset));
        return raceAbort(opening, signal);
      };
      try {
        handle = await open(lease.channel);
      } catch (error) {
        // The one retry allowed: a connection found dead before the first byte.
        if (lease.fresh || !isConnectionLoss(error) || signal?.aborted) throw error;
        lease.broken();
        lease = await this.#host.lease(signal);
        handle = await open(lease.channel);
      }
      const channel = lease.channel;
      const writer = new PipelinedWriter({
        channel,
        handle,
        source: rest,
        start: offset,
        end: size,
        signal,
        mismatch: (got) => sizeMismatch(device, target, size, got),
        onAcked: (bytes) => {
          this.#token = { ...this.#token, stored: bytes };
          onStored?.({ bytes, token: this.token });
        },
      });
      const running = writer.run();
      void track(
        running.then(
          () => writer.settled(),
          () => writer.settled(),
        ),
      );
      // The time (or, without one, the time the server stamped) and the close go right behind
      // the last write, in the same round trip: a server runs a handle's requests in order, and
      // one that did not would fail the writes (no rename follows a failed write).
      await raceAbort(Promise.race([writer.allSent, running]), signal);
      const seconds = modTime === undefined ? undefined : Math.floor(modTime / 1000);
      const timing =
        seconds === undefined
          ? track(channel.fstat(handle)).then((stats) => stats.mtime)
          : track(channel.fsetstat(handle, { atime: nowSeconds(), mtime: seconds })).then(() => seconds);
      const closing = track(channel.close(handle).then(() => (closed = true)));
      const finals = Promise.all([timing, closing]);
      finals.catch(() => undefined);
      // Every write acknowledged: the temp file holds all `size` bytes.
      await running;
      const [mtime] = await raceAbort(finals, signal);
      throwIfAborted(signal);
      await raceAbort(track(this.#host.replace(channel, temp, target)), signal);
      this.#finished = true;
      return { path: target, type: "file", size, modTime: mtime * 1000 };
    } catch (error) {
      // However far it got (the server went away before the first byte, or in the middle), the
      // source is done with: a local file's handle left to the garbage collector leaks meanwhile.
      closeSource(rest);
      if (isConnectionLoss(error)) lease.broken();
      if (signal?.aborted) {
        throw new FerryError("ABORTED", `${device}: ${target}: upload aborted`, { cause: signal.reason });
      }
      throw await this.#host.explain(lease.channel, error, target);
    } finally {
      // Requests still in flight (after an abort) are answered before the handle closes and the
      // channel goes back: the next user of the channel must not get their answers.
      const held = lease;
      const opened = opening;
      this.#settled = Promise.all(pending).then(async () => {
        const late = opened ? await opened.catch(() => undefined) : undefined;
        if (late && !closed) await held.channel.close(late).catch(() => undefined);
        held.release();
      });
    }
  }

  async #openTemp(channel: Channel, remoteTemp: string, offset: number): Promise<Buffer> {
    if (offset > 0) {
      try {
        return await channel.open(remoteTemp, OPEN_WRITE);
      } catch (error) {
        if (sftpStatus(error) === STATUS.NO_SUCH_FILE) {
          throw sftpFailure(
            "TRANSIENT",
            this.#host.name,
            this.#plan.target,
            "the partial upload is gone: it starts over",
            error,
          );
        }
        throw error;
      }
    }
    const flags = OPEN_WRITE | OPEN_CREATE | OPEN_TRUNCATE;
    try {
      return await channel.open(remoteTemp, flags);
    } catch (error) {
      if (sftpStatus(error) !== STATUS.NO_SUCH_FILE) throw error;
      // The folder is missing: make it, then again (cheaper than a mkdir before every write).
      await this.#host.makeFolders(channel, dirname(this.#plan.target));
      return await channel.open(remoteTemp, flags);
    }
  }

  async abort(options: OpOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise((resolve) => (timer = setTimeout(resolve, SETTLE_MS)));
    await Promise.race([this.#settled, waited]).finally(() => clearTimeout(timer));
    const lease = await this.#host.lease(signal);
    try {
      await raceAbort(lease.channel.unlink(await this.#host.remote(this.#plan.temp, signal)), signal);
    } catch (error) {
      if (sftpStatus(error) !== STATUS.NO_SUCH_FILE) {
        if (isConnectionLoss(error)) lease.broken();
        throw await this.#host.explain(lease.channel, error, this.#plan.target);
      }
    } finally {
      lease.release();
    }
  }
}

/** Ends a source that will not be read to its end, closing what it holds open (a local file). */
export function closeSource(source: Readable | AsyncIterable<Uint8Array>): void {
  if (source instanceof Readable) {
    source.destroy();
    return;
  }
  // An async generator is its own iterator: return() runs its finally blocks.
  const iterator = source[Symbol.asyncIterator]();
  void iterator.return?.().catch(() => undefined);
}
