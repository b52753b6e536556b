/**
 * Resumable uploads: the bytes go to `.ferry-<16 hex>.part` in the target's folder (STOR, or APPE
 * from what the server holds when resuming), get the wanted time, and are renamed over the final
 * name (RNFR/RNTO), so the final name never shows a partial file. The temp name lives in the
 * token; how much of it the server holds is asked of the server (SIZE) on resume, and while bytes
 * go a side connection asks the same now and then, so `onStored` reports only what is stored.
 */
import type { Client } from "basic-ftp";
import { FTPError } from "basic-ftp";
import { Readable, Transform } from "node:stream";
import { finished } from "node:stream/promises";
import { FerryError, isFerryError, throwIfAborted, toFerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { dirname, joinPath, normalizePath, pathKey } from "../../core/paths.ts";
import type { Entry, FinishOptions, OpOptions, Upload, UploadOptions, UploadToken } from "../adapter.ts";
import { sizeMismatch } from "../errors.ts";
import type { FtpAction } from "./errors.ts";
import { TEMP_NAME, tempName } from "./names.ts";
import type { FtpPool } from "./pool.ts";
import { upload } from "./transfer.ts";

/** How often the side connection asks how much of an upload in progress is stored, in ms. */
const PROBE_MS = 250;
/** Bytes gathered into one write to the data connection. */
const COALESCE_BYTES = 256 * 1024;

/** What an upload needs of the adapter. */
export interface UploadHost {
  readonly name: string;
  readonly pool: FtpPool;
  readonly logger: Logger;
  remote(path: string): string;
  /** Makes sure the folder exists; true when it was only known from the cache. */
  ensureDir(client: Client, dir: string): Promise<boolean>;
  forgetDir(dir: string): void;
  /** Sets the modification time where the server can; false when it cannot. */
  setTime(client: Client, path: string, remote: string, modTime: number): Promise<boolean>;
  /** RNFR/RNTO `fromRemote` to the Ferry path `to`, replacing a file there. */
  rename(client: Client, fromRemote: string, to: string): Promise<void>;
  map(error: unknown, path: string, action: FtpAction): FerryError;
}

interface FtpToken {
  kind: "ftp";
  /** The Ferry path being written. */
  path: string;
  /** The temp file's name, in the folder of `path`. */
  temp: string;
  size: number;
  modTime: number | null;
}

function parseToken(token: UploadToken | undefined): FtpToken | undefined {
  if (token?.kind !== "ftp") return undefined;
  const { path, temp, size, modTime } = token;
  if (typeof path !== "string" || typeof temp !== "string" || !TEMP_NAME.test(temp)) return undefined;
  if (typeof size !== "number" || !(typeof modTime === "number" || modTime === null)) return undefined;
  try {
    return { kind: "ftp", path: normalizePath(path), temp, size, modTime };
  } catch {
    return undefined;
  }
}

/** Opens an upload of `target` (a checked, located Ferry path), resuming `resume` where it fits. */
export async function openFtpUpload(
  host: UploadHost,
  target: string,
  options: UploadOptions,
): Promise<Upload> {
  const { size, signal } = options;
  const modTime = options.modTime ?? null;
  const old = parseToken(options.resume);
  const fits =
    old !== undefined &&
    pathKey(old.path) === pathKey(target) &&
    old.size === size &&
    old.modTime === modTime;
  if (old && fits) {
    const tempRemote = host.remote(joinPath(dirname(target), old.temp));
    const held = await host.pool
      .use(signal, async (client) => {
        const reply = await client.sendIgnoringError(`SIZE ${tempRemote}`);
        if (reply.code === 213) return Number.parseInt(reply.message.slice(4), 10);
        if (reply.code === 550) return undefined;
        throw new FTPError(reply);
      })
      .catch((error: unknown) => {
        throw host.map(error, target, "stat");
      });
    if (held !== undefined && held <= size) {
      return new FtpUpload(host, { ...old, path: target }, held);
    }
  }
  if (old) await discard(host, joinPath(dirname(old.path), old.temp), signal);
  return new FtpUpload(host, { kind: "ftp", path: target, temp: tempName(), size, modTime }, 0);
}

/** Deletes a temp file (a stale partial), quietly: it may be gone already. */
async function discard(host: UploadHost, tempPath: string, signal?: AbortSignal): Promise<void> {
  await host.pool
    .use(signal, (client) => client.sendIgnoringError(`DELE ${host.remote(tempPath)}`))
    .catch((error: unknown) => {
      if (isFerryError(error, "ABORTED")) throw error;
      host.logger.debug({ path: tempPath, err: error }, "could not remove a stale partial upload");
    });
}

class FtpUpload implements Upload {
  readonly offset: number;
  readonly token: UploadToken;
  readonly #host: UploadHost;
  readonly #state: FtpToken;
  #done = false;

  constructor(host: UploadHost, state: FtpToken, offset: number) {
    this.#host = host;
    this.#state = state;
    this.offset = offset;
    this.token = Object.freeze({ ...state });
  }

  get #tempPath(): string {
    return joinPath(dirname(this.#state.path), this.#state.temp);
  }

  async finish(rest: Readable | AsyncIterable<Uint8Array>, options: FinishOptions = {}): Promise<Entry> {
    const { signal, onStored } = options;
    const host = this.#host;
    const { path, size, modTime } = this.#state;
    const offset = this.offset;
    const input = rest instanceof Readable ? rest : Readable.from(rest, { objectMode: false });
    let sourceError: Error | undefined;
    const fail = (error: Error) => (sourceError ??= error);
    let received = 0;
    let piped = false;
    // Counts the bytes, and gathers small chunks (the local adapter reads 16 KiB at a time) into
    // writes of COALESCE_BYTES: per-write costs, not bytes, bound a fast data connection.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const gathered = () => {
      const out = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      return out;
    };
    const counter = new Transform({
      // Room for the next gathered write while the data connection sends this one.
      readableHighWaterMark: 2 * COALESCE_BYTES,
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        if (received > size - offset) return done(fail(sizeMismatch(host.name, path, size, "more")));
        pending.push(chunk);
        pendingBytes += chunk.length;
        done(null, pendingBytes >= COALESCE_BYTES ? gathered() : undefined);
      },
      flush(done) {
        if (received !== size - offset) {
          return done(fail(sizeMismatch(host.name, path, size, `only ${offset + received}`)));
        }
        done(null, pendingBytes > 0 ? gathered() : undefined);
      },
    });
    const report = (bytes: number) => {
      try {
        onStored?.({ bytes, token: this.token });
      } catch (error) {
        host.logger.warn({ path, err: error }, "onStored failed");
      }
    };
    const probe = onStored && this.#probe(() => offset + received, report);
    try {
      throwIfAborted(signal);
      if (this.#done) throw new FerryError("PROTOCOL", `${host.name}: ${path}: this upload is over`);
      input.on("error", (error) => counter.destroy(fail(error)));
      // Its errors are recorded in sourceError (they may come before the transfer listens).
      counter.on("error", () => undefined);
      input.pipe(counter);
      const tempRemote = host.remote(this.#tempPath);
      const send = async (client: Client) => {
        if (sourceError) throw sourceError;
        return upload(client, offset > 0 ? "APPE" : "STOR", tempRemote, counter, {
          empty: size === offset,
          sourceError: () => sourceError,
          onStart: () => (piped = true),
        }).catch((error: unknown) => {
          // A reply is the server's last word; after anything else the connection's state is unknown.
          if (!(error instanceof FTPError)) client.close();
          throw error;
        });
      };
      return await host.pool.use(
        signal,
        async (client) => {
          const cached = await host.ensureDir(client, dirname(path));
          if (offset > 0) await this.#checkHeld(client, tempRemote);
          try {
            if (offset > 0 && offset === size) await nothingMore(counter);
            else await send(client);
          } catch (error) {
            // The folder was only known from the cache and is gone (removed meanwhile): make it again, once.
            if (!(error instanceof FTPError) || !cached || piped) throw error;
            host.forgetDir(dirname(path));
            await host.ensureDir(client, dirname(path));
            await send(client);
          }
          probe?.stop();
          report(size);
          const timed = modTime !== null && (await host.setTime(client, path, tempRemote, modTime));
          await host.rename(client, tempRemote, path);
          this.#done = true;
          const entry: Entry = { path, type: "file", size };
          if (timed) entry.modTime = Math.floor(modTime / 1000) * 1000;
          return entry;
        },
        () => !piped,
      );
    } catch (error) {
      input.destroy();
      // The source's own failures are not about the server.
      if (sourceError !== undefined && (error === sourceError || !(error instanceof FerryError))) {
        throw toFerryError(sourceError);
      }
      throw host.map(error, path, "upload");
    } finally {
      probe?.stop();
    }
  }

  /** Resuming: the server must still hold exactly what openUpload found. */
  async #checkHeld(client: Client, tempRemote: string): Promise<void> {
    const reply = await client.sendIgnoringError(`SIZE ${tempRemote}`);
    const held = reply.code === 213 ? Number.parseInt(reply.message.slice(4), 10) : undefined;
    if (held === this.offset) return;
    throw new FerryError(
      "TRANSIENT",
      `${this.#host.name}: ${this.#state.path}: the partial upload changed (${held ?? "gone"}, expected ${this.offset} bytes); start again`,
      { subject: this.#state.path },
    );
  }

  /** Asks now and then how much of the temp file the server holds, and reports growth. */
  #probe(sent: () => number, report: (bytes: number) => void) {
    const host = this.#host;
    const tempRemote = host.remote(this.#tempPath);
    let reported = this.offset;
    let stopped = false;
    let asking = false;
    const timer = setInterval(() => {
      if (asking || stopped || sent() <= reported) return;
      asking = true;
      void host.pool
        .side((client) => client.size(tempRemote))
        .then((held) => {
          asking = false;
          if (stopped || held === undefined || held <= reported || held > this.#state.size) return;
          reported = held;
          report(held);
        });
    }, PROBE_MS);
    timer.unref();
    return {
      stop: () => {
        stopped = true;
        clearInterval(timer);
      },
    };
  }

  async abort(options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    this.#done = true;
    const host = this.#host;
    await host.pool
      .use(options.signal, async (client) => {
        const reply = await client.sendIgnoringError(`DELE ${host.remote(this.#tempPath)}`);
        if (reply.code >= 400 && reply.code !== 550) throw new FTPError(reply);
      })
      .catch((error: unknown) => {
        throw host.map(error, this.#state.path, "remove");
      });
  }
}

/** A resumed upload the server holds all of: the rest must be empty (the counter checks). */
async function nothingMore(counter: Transform): Promise<void> {
  counter.resume();
  await finished(counter);
}
