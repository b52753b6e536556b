/**
 * The server side of the adapter: the channel pool on one SSH connection, the root folder, and
 * the multi-request steps every operation shares (run with one reconnect, mkdir -p, replace by
 * rename, NFC lookup, and the follow-up questions that turn OpenSSH's "Failure" into a code).
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { posix, resolve } from "node:path";
import { FerryError, raceAbort, throwIfAborted } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { dirname, joinPath, pathKey } from "../../core/paths.ts";
import type { AdapterContext } from "../adapter.ts";
import type { Channel } from "./channel.ts";
import { ChannelPool, SshSession, type Lease } from "./connection.ts";
import {
  STATUS,
  configError,
  isConnectionLoss,
  isMissing,
  sftpError,
  sftpFailure,
  sftpStatus,
} from "./errors.ts";
import { knownHostsCheck, pinnedHostKey, type HostKeyCheck } from "./host-keys.ts";
import { absoluteRoot, isAscii, remotePath } from "./names.ts";
import { CHANNELS, type SftpOptions } from "./options.ts";
import { CHUNK_BYTES } from "./pipelined-writer.ts";
import type { UploadHost } from "./upload.ts";

export class SftpRemote implements UploadHost {
  readonly name: string;
  readonly #logger: Logger;
  readonly #pool: ChannelPool;
  readonly #rootOption: string | undefined;
  /** The absolute root folder on the server, once known (relative roots need the login folder). */
  #root: string | undefined;
  #resolvingRoot: Promise<string> | undefined;

  constructor(options: SftpOptions, context: AdapterContext) {
    this.name = context.name;
    this.#logger = context.logger;
    this.#rootOption = options.root;
    const device = context.name;
    // "~/" means the home folder, as in ssh's own options.
    const home = (file: string) => (file.startsWith("~/") ? posix.join(homedir(), file.slice(2)) : file);
    const keyFile =
      options.private_key_file === undefined
        ? undefined
        : resolve(context.baseDir, home(options.private_key_file));
    const pins = options.host_key === undefined ? undefined : [options.host_key].flat();
    const knownHosts = resolve(context.baseDir, home(options.known_hosts ?? "~/.ssh/known_hosts"));
    const hostKeys = async (): Promise<HostKeyCheck> => {
      if (pins) return pinnedHostKey(pins);
      const text = await readFile(knownHosts, "utf8").catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
        throw configError(device, `cannot read known_hosts ${knownHosts}: ${String(error)}`, error);
      });
      return knownHostsCheck(text, knownHosts, options.host, options.port);
    };
    const privateKey =
      keyFile === undefined
        ? undefined
        : () =>
            readFile(keyFile).catch((error: unknown) => {
              throw configError(device, `cannot read private_key_file ${keyFile}: ${String(error)}`, error);
            });
    const settings = {
      device,
      host: options.host,
      port: options.port,
      username: options.username,
      hostKeys,
      logger: context.logger,
      ...(options.password ? { password: options.password } : {}),
      ...(privateKey ? { privateKey } : {}),
      ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    };
    this.#pool = new ChannelPool(
      device,
      async () => {
        const session = await SshSession.connect(settings);
        this.#logger.debug({ host: options.host, port: options.port }, "sftp: connected");
        return session;
      },
      CHANNELS,
    );
  }

  lease(signal?: AbortSignal): Promise<Lease> {
    return this.#pool.lease(signal);
  }

  /** Runs `fn` on a leased channel; a connection found dead is replaced once before it starts. */
  async run<T>(
    path: string,
    signal: AbortSignal | undefined,
    fn: (channel: Channel) => Promise<T>,
  ): Promise<T> {
    throwIfAborted(signal);
    await this.ensureRoot(signal);
    for (let attempt = 0; ; attempt++) {
      const lease = await this.#pool.lease(signal);
      const work = fn(lease.channel);
      try {
        const value = await raceAbort(work, signal);
        lease.release();
        return value;
      } catch (error) {
        if (signal?.aborted) {
          // The request is under way: the channel goes back once it is answered.
          void work.then(
            () => lease.release(),
            () => lease.release(),
          );
          throw new FerryError("ABORTED", `${this.name}: ${path || "/"}: aborted`, { cause: signal.reason });
        }
        if (isConnectionLoss(error)) {
          lease.broken();
          if (attempt === 0 && !lease.fresh) continue;
          throw sftpError(error, this.name, path);
        }
        try {
          throw await this.explain(lease.channel, error, path);
        } finally {
          lease.release();
        }
      }
    }
  }

  async remote(path: string, signal?: AbortSignal): Promise<string> {
    await this.ensureRoot(signal);
    return this.abs(path);
  }

  /** The server's absolute path of a Ferry path (the root is known: see #ensureRoot). */
  abs(path: string): string {
    if (this.#root === undefined) throw new Error("sftp: the root folder is not resolved yet");
    return remotePath(this.#root, path);
  }

  async ensureRoot(signal?: AbortSignal): Promise<void> {
    if (this.#root !== undefined) return;
    const option = this.#rootOption;
    if (option?.startsWith("/")) {
      this.#root = absoluteRoot("/", option);
      return;
    }
    this.#resolvingRoot ??= (async () => {
      const lease = await this.#pool.lease();
      try {
        return absoluteRoot(await lease.channel.realpath("."), option);
      } catch (error) {
        throw sftpError(error, this.name, "");
      } finally {
        lease.release();
      }
    })().finally(() => (this.#resolvingRoot = undefined));
    this.#root = await raceAbort(this.#resolvingRoot, signal);
  }

  async explain(channel: Channel, error: unknown, path: string): Promise<FerryError> {
    if (error instanceof FerryError) return error;
    // OpenSSH folds ENOSPC into "Failure": ask the filesystem whether it is full.
    if (sftpStatus(error) === STATUS.FAILURE && channel.statvfs && !channel.closed) {
      const folder = this.abs(dirname(path));
      const info = await channel.fsInfo(folder).catch(() => undefined);
      if (info && (info.f_bavail * info.f_frsize < 2 * CHUNK_BYTES || info.f_favail === 0)) {
        return sftpFailure("NO_SPACE", this.name, path, "no space left on the server", error);
      }
    }
    return sftpError(error, this.name, path);
  }

  async makeFolders(channel: Channel, folder: string): Promise<void> {
    await this.#mkdirs(channel, this.abs(folder), folder);
  }

  /**
   * mkdir -p, from the folder up as far as needed: writes open their temp file first and come
   * here only when its folder is missing, so no folder is asked about on every write.
   */
  async #mkdirs(channel: Channel, remote: string, path: string): Promise<void> {
    try {
      await channel.mkdir(remote);
      return;
    } catch (error) {
      if (isMissing(error) && remote !== "/") {
        await this.#mkdirs(channel, posix.dirname(remote), dirname(path));
        try {
          await channel.mkdir(remote);
          return;
        } catch (again) {
          await this.#existingFolder(channel, remote, path, again);
          return;
        }
      }
      await this.#existingFolder(channel, remote, path, error);
    }
  }

  /** A mkdir failed: fine if a folder is there ("Failure" is how OpenSSH says EEXIST). */
  async #existingFolder(channel: Channel, remote: string, path: string, error: unknown): Promise<void> {
    const stats = await channel.stat(remote).catch(() => undefined);
    if (stats?.isDirectory()) return;
    if (stats) throw sftpFailure("EXISTS", this.name, path, "a file is in the way of a folder", error);
    throw error;
  }

  async replace(channel: Channel, from: string, to: string): Promise<void> {
    const [source, target] = [this.abs(from), this.abs(to)];
    const inTheWay = async (error: unknown) => {
      const stats = await channel.lstat(target).catch(() => undefined);
      if (stats?.isDirectory()) throw sftpFailure("EXISTS", this.name, to, "a folder is in the way", error);
      return stats !== undefined;
    };
    if (channel.posixRename) {
      try {
        await channel.posixRenameTo(source, target);
      } catch (error) {
        if (sftpStatus(error) === STATUS.FAILURE) await inTheWay(error);
        throw error;
      }
      return;
    }
    try {
      await channel.rename(source, target);
    } catch (error) {
      // SFTP v3 rename refuses an existing target: remove it first (a short window without it).
      if (!(await inTheWay(error))) throw error;
      await channel.unlink(target);
      await channel.rename(source, target);
    }
  }

  /**
   * The path as stored on the server: each component that does not exist as given is matched
   * against its folder's entries in NFC. ASCII paths have one form only: no round trip for them.
   */
  async locate(path: string, signal?: AbortSignal): Promise<string> {
    if (path === "" || isAscii(path)) return path;
    const exists = (at: string) =>
      this.run(at, signal, async (channel) => {
        try {
          await channel.lstat(this.abs(at));
          return true;
        } catch (error) {
          // Anything but "missing" is left for the real operation to report.
          return !isMissing(error);
        }
      });
    if (await exists(path)) return path;
    const parts = path.split("/");
    let found = "";
    for (const [i, part] of parts.entries()) {
      const direct = joinPath(found, part);
      if (isAscii(part) ? true : await exists(direct)) {
        found = direct;
        continue;
      }
      const key = pathKey(part);
      const names = await this.run(found, signal, async (channel) =>
        (await channel.readdir(this.abs(found)).catch(() => [])).map((e) => e.filename),
      );
      const match = names.find((name) => pathKey(name) === key);
      if (match === undefined) return joinPath(found, ...parts.slice(i));
      found = joinPath(found, match);
    }
    return found;
  }

  close(): void {
    this.#pool.close();
  }
}
