/**
 * A pool of logged-in FTP connections. A basic-ftp client does one thing at a time, so every
 * operation leases a connection of its own; `size` of them may be open at once (the adapter's
 * `maxConcurrency`), plus one for short side questions (the size of an upload in progress).
 *
 * An abort closes the leased connection: whatever it was doing stops at once, and the pool opens a
 * new one for the next lease. A connection the server dropped while it sat idle is noticed at the
 * next lease and replaced; when that shows only on the first command, `use` redoes the operation
 * once on a new connection (before its first byte went, the only retry the adapter makes).
 */
import type { Client } from "basic-ftp";
import { FerryError, throwIfAborted } from "../../core/errors.ts";

export interface Lease {
  readonly client: Client;
  /** Whether this connection was opened for this lease (a failure on it is not a stale connection). */
  readonly fresh: boolean;
  /** Gives the connection back for the next operation. */
  release(): void;
  /** Closes the connection (its state is unknown or it broke) and frees its place. */
  discard(): void;
}

interface Waiter {
  resolve(lease: Lease): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

const aborted = (signal: AbortSignal | undefined) =>
  new FerryError("ABORTED", "operation aborted", { cause: signal?.reason });

export class FtpPool {
  readonly #connect: () => Promise<Client>;
  readonly #size: number;
  readonly #idle: Client[] = [];
  readonly #all = new Set<Client>();
  readonly #waiters: Waiter[] = [];
  /** Connections open or being opened for the main pool. */
  #count = 0;
  #closed = false;
  #side: Client | undefined;
  #sideBusy = false;

  constructor(connect: () => Promise<Client>, size: number) {
    this.#connect = connect;
    this.#size = size;
  }

  /** A connection of its own for one operation; waits for a free place. */
  async acquire(signal?: AbortSignal): Promise<Lease> {
    throwIfAborted(signal);
    if (this.#closed) throw new FerryError("UNAVAILABLE", "the FTP connections are closed");
    for (let client = this.#idle.pop(); client; client = this.#idle.pop()) {
      if (!client.closed) return this.#lease(client, false);
      this.#drop(client);
    }
    if (this.#count < this.#size) return this.#open(signal);
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          reject(aborted(signal));
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Runs `work` on a leased connection; an abort of `signal` closes it. When a reused connection
   * turns out dead (closed after the failure) and `canRetry` says nothing was sent yet, the work
   * runs once more on a new connection.
   */
  async use<T>(
    signal: AbortSignal | undefined,
    work: (client: Client) => Promise<T>,
    canRetry: () => boolean = () => true,
  ): Promise<T> {
    const { lease, value } = await this.hold(signal, work, canRetry);
    lease.release();
    return value;
  }

  /** Like `use`, but the connection stays leased after `work` (a download still running on it). */
  async hold<T>(
    signal: AbortSignal | undefined,
    work: (client: Client) => Promise<T>,
    canRetry: () => boolean = () => true,
  ): Promise<{ lease: Lease; value: T }> {
    for (let attempt = 0; ; attempt++) {
      const lease = await this.acquire(signal);
      const onAbort = () => lease.client.close();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const value = await work(lease.client);
        signal?.removeEventListener("abort", onAbort);
        return { lease, value };
      } catch (error) {
        signal?.removeEventListener("abort", onAbort);
        // A refusal (550...) leaves the connection usable; work closes one whose state is unknown.
        const dead = lease.client.closed;
        if (dead) lease.discard();
        else lease.release();
        if (signal?.aborted) throw aborted(signal);
        const stale = dead && !lease.fresh && !(error instanceof FerryError);
        if (!stale || attempt > 0 || !canRetry()) throw error;
      }
    }
  }

  /**
   * Asks a short question on the side connection, which is never busy with a transfer. Gives
   * undefined instead of waiting when it is busy, and on any failure (the next call reconnects).
   */
  async side<T>(work: (client: Client) => Promise<T>): Promise<T | undefined> {
    if (this.#closed || this.#sideBusy) return undefined;
    this.#sideBusy = true;
    try {
      if (!this.#side || this.#side.closed) {
        this.#side?.close();
        this.#side = await this.#connect();
      }
      return await work(this.#side);
    } catch {
      this.#side?.close();
      this.#side = undefined;
      return undefined;
    } finally {
      this.#sideBusy = false;
      // close() may have run meanwhile; a side connection opened after it must not linger.
      if (this.#isClosed()) this.#side?.close();
    }
  }

  #isClosed(): boolean {
    return this.#closed;
  }

  /** Closes every connection, also those in use (their operations fail). */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.reject(new FerryError("UNAVAILABLE", "the FTP connections were closed"));
    }
    for (const client of this.#all) client.close();
    this.#all.clear();
    this.#idle.length = 0;
    this.#side?.close();
    this.#side = undefined;
  }

  async #open(signal: AbortSignal | undefined): Promise<Lease> {
    this.#count++;
    let client: Client;
    try {
      client = await raceSignal(this.#connect(), signal);
    } catch (error) {
      this.#count--;
      this.#handOver();
      throw error;
    }
    if (this.#closed) {
      client.close();
      throw new FerryError("UNAVAILABLE", "the FTP connections were closed");
    }
    this.#all.add(client);
    return this.#lease(client, true);
  }

  #lease(client: Client, fresh: boolean): Lease {
    let done = false;
    return {
      client,
      fresh,
      release: () => {
        if (done) return;
        done = true;
        if (client.closed || this.#closed) return this.#drop(client);
        const waiter = this.#waiters.shift();
        if (waiter) {
          waiter.signal?.removeEventListener("abort", waiter.onAbort);
          waiter.resolve(this.#lease(client, false));
        } else {
          this.#idle.push(client);
        }
      },
      discard: () => {
        if (done) return;
        done = true;
        this.#drop(client);
      },
    };
  }

  #drop(client: Client): void {
    client.close();
    if (this.#all.delete(client)) this.#count--;
    this.#handOver();
  }

  /** A place came free: open a connection for the first waiter. */
  #handOver(): void {
    if (this.#closed || this.#count >= this.#size) return;
    const waiter = this.#waiters.shift();
    if (!waiter) return;
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    this.#open(waiter.signal).then(
      (lease) => waiter.resolve(lease),
      (error: unknown) => waiter.reject(error),
    );
  }
}

/** `promise`, or ABORTED as soon as `signal` fires (a connection that comes later is closed). */
async function raceSignal(promise: Promise<Client>, signal: AbortSignal | undefined): Promise<Client> {
  if (!signal) return promise;
  throwIfAborted(signal);
  return new Promise<Client>((resolve, reject) => {
    const onAbort = () => {
      reject(aborted(signal));
      promise.then((client) => client.close()).catch(() => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (client) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) client.close();
        else resolve(client);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
