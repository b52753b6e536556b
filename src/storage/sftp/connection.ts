/**
 * One SSH connection to the server and a pool of SFTP channels on it. Measured on OpenSSH (see
 * README): one connection with several channels moves small files faster than as many
 * connections (no extra handshakes, one server process doing the crypto), and a single channel
 * already fills the link for a big file. Each operation leases a channel of its own, so transfers
 * never queue behind each other's writes. A connection that drops is replaced on the next lease.
 */
import { Client, type AuthenticationType, type ConnectConfig, type ServerHostKeyAlgorithm } from "ssh2";
import { FerryError, raceAbort, throwIfAborted } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Secret } from "../../core/secret.ts";
import { Channel } from "./channel.ts";
import { connectionError, hostKeyError } from "./errors.ts";
import type { HostKeyCheck } from "./host-keys.ts";

export interface ConnectSettings {
  device: string;
  host: string;
  port: number;
  username: string;
  password?: Secret;
  /** The private key file's content (read on each connect, so a rotated key is picked up). */
  privateKey?: () => Promise<Buffer>;
  passphrase?: Secret;
  /** The host key check for this connection (known_hosts is read again on each connect). */
  hostKeys: () => Promise<HostKeyCheck>;
  logger: Logger;
  /** Limit of the TCP connect + SSH handshake + login. */
  readyTimeoutMs?: number;
}

const KEEPALIVE_MS = 15_000;

/** An authenticated SSH connection. */
export class SshSession {
  readonly #client: Client;
  readonly #device: string;
  #alive = true;
  readonly #onClose = new Set<() => void>();

  private constructor(client: Client, device: string) {
    this.#client = client;
    this.#device = device;
    client.on("close", () => {
      this.#alive = false;
      for (const listener of this.#onClose) listener();
    });
    // After "ready", errors end the connection ("close" follows); they must not crash the process.
    client.on("error", () => undefined);
  }

  get alive(): boolean {
    return this.#alive;
  }

  onClose(listener: () => void): void {
    if (this.#alive) this.#onClose.add(listener);
    else listener();
  }

  /** Connects and logs in (bounded by `readyTimeoutMs`; shared by waiters, so no signal). */
  static async connect(settings: ConnectSettings): Promise<SshSession> {
    const { device } = settings;
    const check = await settings.hostKeys();
    const privateKey = settings.privateKey ? await settings.privateKey() : undefined;
    const methods: AuthenticationType[] = [
      ...(privateKey ? (["publickey"] as const) : []),
      ...(settings.password ? (["password"] as const) : []),
    ];
    const config: ConnectConfig = {
      host: settings.host,
      port: settings.port,
      username: settings.username,
      // Runs in the key exchange, before any credential goes out.
      hostVerifier: (key: Buffer) => check.verify(key),
      authHandler: methods,
      tryKeyboard: false,
      readyTimeout: settings.readyTimeoutMs ?? 20_000,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: 3,
    };
    if (settings.password) config.password = settings.password.reveal();
    if (privateKey) config.privateKey = privateKey;
    if (privateKey && settings.passphrase) config.passphrase = settings.passphrase.reveal();
    // Ask for the key types known_hosts has for this host, as ssh does.
    if (check.algorithms) config.algorithms = { serverHostKey: check.algorithms as ServerHostKeyAlgorithm[] };
    const client = new Client();
    return await new Promise<SshSession>((resolve, reject) => {
      const cleanup = () => {
        client.removeListener("ready", onReady);
        client.removeListener("error", onError);
        client.removeListener("close", onClose);
      };
      // A connection closed before "ready" without an error (ssh2 usually gives one).
      const onClose = () => onError(new Error("Connection lost before handshake"));
      const onReady = () => {
        cleanup();
        resolve(new SshSession(client, device));
      };
      const onError = (error: Error) => {
        cleanup();
        client.on("error", () => undefined);
        client.end();
        const offered = check.offered;
        if (check.refusal !== undefined && offered) {
          reject(hostKeyError(device, `${offered.type} ${offered.fingerprint}`, check.refusal));
        } else {
          reject(connectionError(error, device));
        }
      };
      client.once("ready", onReady);
      client.once("error", onError);
      client.once("close", onClose);
      try {
        client.connect(config);
      } catch (error) {
        // ssh2 parses the private key here: a bad key or passphrase throws at once.
        onError(
          new FerryError("AUTH", `${device}: cannot use private_key_file: ${(error as Error).message}`, {
            subject: device,
            retryable: false,
            cause: error,
          }),
        );
      }
    });
  }

  /** Opens an SFTP channel; `onClose` runs when it closes. */
  openChannel(onClose: () => void): Promise<Channel> {
    if (!this.#alive) return Promise.reject(connectionError(new Error("Not connected"), this.#device));
    return new Promise((resolve, reject) => {
      this.#client.sftp((error, sftp) => {
        if (error) reject(error);
        else resolve(new Channel(sftp, onClose));
      });
    });
  }

  end(): void {
    this.#client.end();
  }
}

/** A channel leased for one operation. */
export interface Lease {
  readonly channel: Channel;
  /** The connection was made for this lease (a failure on it is not a stale connection). */
  readonly fresh: boolean;
  /** Gives the channel back for the next operation. */
  release(): void;
  /** The connection broke under this lease: drop it, so the next lease connects again. */
  broken(): void;
}

export class ChannelPool {
  readonly #device: string;
  readonly #connect: () => Promise<SshSession>;
  #cap: number;
  #session: SshSession | undefined;
  #connecting: Promise<SshSession> | undefined;
  #idle: Channel[] = [];
  /** Channels of the current session, idle or leased. */
  #count = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(device: string, connect: () => Promise<SshSession>, channels: number) {
    this.#device = device;
    this.#connect = connect;
    this.#cap = channels;
  }

  async lease(signal?: AbortSignal): Promise<Lease> {
    for (;;) {
      throwIfAborted(signal);
      if (this.#closed) throw new FerryError("ABORTED", "the adapter is closed");
      const { session, fresh } = await this.#current(signal);
      const idle = this.#idle.pop();
      if (idle) {
        if (idle.closed) {
          this.#count--;
          continue;
        }
        return this.#lease(session, idle, fresh);
      }
      if (this.#count < this.#cap) {
        this.#count++;
        let channel: Channel;
        try {
          channel = await session.openChannel(() => this.#wake());
        } catch (error) {
          if (this.#session === session) this.#count--;
          // The server allows fewer sessions per connection (MaxSessions): use what we have.
          if (/Channel open failure/.test(String(error)) && this.#count > 0) {
            this.#cap = this.#count;
            continue;
          }
          throw connectionError(error, this.#device);
        }
        if (this.#session !== session) {
          channel.end();
          continue;
        }
        if (signal?.aborted) {
          this.#put(session, channel);
          throwIfAborted(signal);
        }
        return this.#lease(session, channel, fresh);
      }
      await this.#wait(signal);
    }
  }

  #lease(session: SshSession, channel: Channel, fresh: boolean): Lease {
    let done = false;
    return {
      channel,
      fresh,
      release: () => {
        if (done) return;
        done = true;
        this.#put(session, channel);
      },
      broken: () => {
        if (done) return;
        done = true;
        if (this.#session !== session) return;
        // Only the channel died (its server process): the other transfers go on.
        if (channel.closed && session.alive) this.#put(session, channel);
        else this.#drop(session);
      },
    };
  }

  #put(session: SshSession, channel: Channel): void {
    if (this.#session === session && session.alive && !channel.closed && !this.#closed) {
      this.#idle.push(channel);
    } else if (this.#session === session) {
      this.#count--;
      channel.end();
    }
    this.#wake();
  }

  async #current(signal?: AbortSignal): Promise<{ session: SshSession; fresh: boolean }> {
    if (this.#session?.alive) return { session: this.#session, fresh: false };
    if (this.#session) this.#drop(this.#session);
    let connecting = this.#connecting;
    if (!connecting) {
      // Shared by every lease waiting for it, so no one caller's signal may abort it (the
      // handshake has its own time limit); each waiter stops waiting on its own signal.
      connecting = this.#connect().then(
        (session) => {
          this.#connecting = undefined;
          if (this.#closed) {
            session.end();
            throw new FerryError("ABORTED", "the adapter is closed");
          }
          this.#session = session;
          this.#idle = [];
          this.#count = 0;
          session.onClose(() => {
            if (this.#session === session) this.#drop(session);
          });
          return session;
        },
        (error: unknown) => {
          this.#connecting = undefined;
          throw error;
        },
      );
      this.#connecting = connecting;
    }
    return { session: await raceAbort(connecting, signal), fresh: true };
  }

  #drop(session: SshSession): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    for (const channel of this.#idle) channel.end();
    this.#idle = [];
    this.#count = 0;
    session.end();
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #wake(): void {
    this.#waiters.shift()?.();
  }

  #wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(wake);
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#session) this.#drop(this.#session);
  }
}
