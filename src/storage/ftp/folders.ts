/**
 * Folders known to exist on the server, and making missing ones with few round trips: a write
 * into a known folder costs nothing, into a new folder of a known one a single MKD. Parents are
 * walked up only when an MKD fails and the folder is not there.
 */
import { FTPError, type Client, type FTPResponse } from "basic-ftp";
import { ftpFailure } from "./errors.ts";
import { remoteParent } from "./names.ts";

const ok = (reply: FTPResponse) => reply.code >= 200 && reply.code < 300;

export class Folders {
  readonly #device: string;
  readonly #remote: (path: string) => string;
  /** FTP paths of folders seen to exist. */
  readonly #known = new Set<string>();
  /** Folders being made right now, so that parallel writes into one new folder share one MKD. */
  readonly #making = new Map<string, Promise<void>>();

  constructor(device: string, remote: (path: string) => string) {
    this.#device = device;
    this.#remote = remote;
  }

  /** Makes sure the folder (a Ferry path) exists; true when that was only known from the cache. */
  async ensure(client: Client, dir: string): Promise<boolean> {
    const remote = this.#remote(dir);
    if (remote === "/" || this.#known.has(remote)) return true;
    const running = this.#making.get(remote);
    if (running) {
      // Made on another connection; should that one have failed (or been aborted), try on ours.
      await running.catch(() => this.#make(client, remote, dir));
      return false;
    }
    const making = this.#make(client, remote, dir).finally(() => this.#making.delete(remote));
    this.#making.set(remote, making);
    await making;
    return false;
  }

  /** Forgets a folder and everything below it (removed, moved, or found missing). */
  forget(dir: string): void {
    const remote = this.#remote(dir);
    for (const known of this.#known) {
      if (known === remote || known.startsWith(`${remote}/`)) this.#known.delete(known);
    }
  }

  async #make(client: Client, remote: string, dir: string): Promise<void> {
    const first = await client.sendIgnoringError(`MKD ${remote}`);
    if (await this.#exists(client, first, remote)) return;
    const parent = remoteParent(remote);
    if (parent === "/" || (await this.#isDir(client, parent)))
      return this.#refused(client, remote, dir, first);
    this.#known.delete(parent);
    await this.#make(client, parent, dir);
    const again = await client.sendIgnoringError(`MKD ${remote}`);
    if (await this.#exists(client, again, remote)) return;
    return this.#refused(client, remote, dir, again);
  }

  /** After a refused MKD: whether the folder is there after all (then it is remembered). */
  async #exists(client: Client, reply: FTPResponse, remote: string): Promise<boolean> {
    if (ok(reply)) {
      this.#known.add(remote);
      return true;
    }
    // 550 is "exists", "no parent" or "not allowed" alike; anything else (500 line too long, 421) is final.
    if (reply.code !== 550) throw new FTPError(reply);
    return this.#isDir(client, remote);
  }

  async #isDir(client: Client, remote: string): Promise<boolean> {
    const reply = await client.sendIgnoringError(`CWD ${remote}`);
    if (reply.code === 250) {
      this.#known.add(remote);
      return true;
    }
    if (reply.code === 550) return false;
    throw new FTPError(reply);
  }

  async #refused(client: Client, remote: string, dir: string, reply: FTPResponse): Promise<never> {
    const context = { device: this.#device, path: dir, action: "mkdir" as const };
    const said = reply.message.trim();
    if ((await client.sendIgnoringError(`SIZE ${remote}`)).code === 213) {
      throw ftpFailure("EXISTS", context, `a file has the name of folder ${remote} (${said})`);
    }
    throw ftpFailure("PERMISSION", context, `the server refused to make folder ${remote} (${said})`);
  }
}
