/**
 * Questions asked of the server on one connection, in as few round trips as FTP allows: is it a
 * folder (CWD), what is it (SIZE, MDTM), what does a folder hold (LIST, or MLSD where offered),
 * and where is a name stored when it is not there as given (NFC lookup).
 */
import { FileType, FTPError, type Client, type FileInfo } from "basic-ftp";
import { joinPath, pathKey } from "../../core/paths.ts";
import type { Entry } from "../adapter.ts";
import { TEMP_NAME, isAscii, parseMdtm } from "./names.ts";

export class Queries {
  readonly #remote: (path: string) => string;

  constructor(remote: (path: string) => string) {
    this.#remote = remote;
  }

  /** CWD there: true for a folder (the connection then stands in it; only listings rely on that). */
  async isDir(client: Client, path: string): Promise<boolean> {
    const reply = await client.sendIgnoringError(`CWD ${this.#remote(path)}`);
    if (reply.code === 250) return true;
    if (reply.code === 550) return false;
    throw new FTPError(reply);
  }

  /** The entry at `path`, or undefined when nothing is there. */
  async stat(client: Client, path: string): Promise<Entry | undefined> {
    const remote = this.#remote(path);
    if (path !== "") {
      const size = await client.sendIgnoringError(`SIZE ${remote}`);
      if (size.code === 213) {
        const entry: Entry = { path, type: "file", size: Number.parseInt(size.message.slice(4), 10) };
        const mdtm = await client.sendIgnoringError(`MDTM ${remote}`);
        const modTime = mdtm.code === 213 ? parseMdtm(mdtm.message) : undefined;
        if (modTime !== undefined) entry.modTime = modTime;
        return entry;
      }
      if (size.code !== 550) throw new FTPError(size);
    }
    return (await this.isDir(client, path)) ? { path, type: "dir" } : undefined;
  }

  /** The entries of the folder `dir`, which the connection stands in (after `isDir`). */
  async listing(client: Client, dir: string): Promise<Entry[]> {
    const out: Entry[] = [];
    for (const info of await client.list()) {
      if (TEMP_NAME.test(info.name) || info.name === "." || info.name === "..") continue;
      const entry = await this.#entryOf(client, joinPath(dir, info.name), info);
      if (entry) out.push(entry);
    }
    return out;
  }

  async #entryOf(client: Client, path: string, info: FileInfo): Promise<Entry | undefined> {
    if (info.type === FileType.Directory) return { path, type: "dir" };
    if (info.type === FileType.File) {
      const entry: Entry = { path, type: "file", size: info.size };
      // Only MLSD times are exact; LIST's "Jan 02 03:04" or "Jan 02 2024" are not given out.
      if (info.modifiedAt) entry.modTime = info.modifiedAt.getTime();
      return entry;
    }
    // A symlink: whatever it points to, if that exists.
    return this.stat(client, path);
  }

  /** Names in a folder, or undefined when it is not a folder. */
  async names(client: Client, dir: string): Promise<string[] | undefined> {
    if (!(await this.isDir(client, dir))) return undefined;
    return (await client.list()).map((info) => info.name);
  }

  /**
   * The path as stored: each non-ASCII component that is not there as given is matched in NFC
   * against its folder's entries. ASCII components have one form only and are not looked up.
   */
  async locate(client: Client, path: string): Promise<string> {
    if (isAscii(path)) return path;
    let found = "";
    const parts = path.split("/");
    for (const [i, part] of parts.entries()) {
      if (isAscii(part)) {
        found = joinPath(found, part);
        continue;
      }
      const names = await this.names(client, found);
      const match = names?.includes(part) ? part : names?.find((n) => pathKey(n) === pathKey(part));
      if (match === undefined) return joinPath(found, ...parts.slice(i));
      found = joinPath(found, match);
    }
    return found;
  }
}
