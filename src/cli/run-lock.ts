/**
 * One `ferry sync` at a time per data folder. A cron job that fires while the last run is still
 * sending would otherwise meet it on every printer (one transfer at a time) and send files twice.
 *
 * The lock is a listening Unix socket named after the data folder: only one process can listen
 * on a name, and the kernel lets go of it when that process ends in any way (kill -9, a crash),
 * so there is no stale lock to judge and no race in taking one over. On Linux the name lives in
 * the abstract namespace (no file at all); elsewhere it is a socket file in the data folder, and
 * one that nobody answers on is left over from a dead run and replaced. A second run connects,
 * hears who holds the lock, and says so.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import { createConnection, createServer, type Server } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { FerryError } from "../core/errors.ts";

export interface LockHolder {
  /** "sync" or "serve": the command that holds the lock. */
  command: string;
  pid: number;
  startedAt: string;
}

export class LockedError extends Error {
  override readonly name = "LockedError";
}

export interface RunLock {
  release(): Promise<void>;
}

export async function socketName(dataDir: string): Promise<string> {
  const real = await fs.realpath(dataDir);
  if (process.platform !== "linux") return join(real, "sync.lock");
  const digest = createHash("sha256").update(`${hostname()}\0${real}`).digest("hex").slice(0, 32);
  return `\0ferry-sync-${digest}`;
}

/**
 * Takes `dataDir`'s lock for `command` ("sync" or "serve": one of them at a time, since both send
 * to the same devices and keep the same records), or throws LockedError naming the holder.
 */
export async function acquireRunLock(dataDir: string, command = "sync"): Promise<RunLock> {
  try {
    await fs.mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw new FerryError(
      "PERMISSION",
      `cannot create the data folder ${dataDir} (data_dir in the config): ${(error as Error).message}`,
      { cause: error, subject: dataDir },
    );
  }
  const name = await socketName(dataDir);
  const me: LockHolder = { command, pid: process.pid, startedAt: new Date().toISOString() };
  let server: Server;
  try {
    server = await listen(name, me);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    const holder = await ask(name);
    if (holder !== undefined) {
      throw new LockedError(
        `another ferry ${holder.command} (pid ${holder.pid}, started ${holder.startedAt}) is running with the data folder ${dataDir}; this run changes nothing`,
      );
    }
    // A socket file nobody answers on: its run is gone (names are files only off Linux).
    if (name.startsWith("\0")) {
      throw new LockedError(`the sync lock of ${dataDir} is held by a process that does not answer`);
    }
    await fs.rm(name, { force: true });
    server = await listen(name, me);
  }
  return {
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function listen(name: string, me: LockHolder): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.end(JSON.stringify(me)));
    server.once("error", reject);
    server.listen({ path: name, exclusive: true }, () => {
      server.off("error", reject);
      // The lock must never be what keeps the process alive.
      server.unref();
      resolve(server);
    });
  });
}

/** Who holds the lock, or undefined when nobody answers on the name. */
function ask(name: string): Promise<LockHolder | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ path: name });
    let connected = false;
    let text = "";
    socket.setEncoding("utf8");
    socket.setTimeout(2000, () => socket.destroy());
    socket.on("connect", () => (connected = true));
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (!connected) {
        resolve(undefined);
        return;
      }
      try {
        const holder = JSON.parse(text) as Partial<LockHolder>;
        resolve({
          command: holder.command ?? "sync",
          pid: Number(holder.pid),
          startedAt: String(holder.startedAt),
        });
      } catch {
        // Someone listens but did not say who: still a holder.
        resolve({ command: "run", pid: NaN, startedAt: "at an unknown time" });
      }
    });
  });
}
