/**
 * Finds a removable volume on each call: its /dev/disk/by-uuid (or by-label) link → the device
 * node → its mount in /proc/self/mountinfo → the folder to serve. Answers are cached for a moment
 * so a burst of operations reads the mount table once; the presence checks of running transfers
 * always look afresh.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import { join } from "node:path";
import { isFerryError, type FerryError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { fsError, isMissing } from "../local/errors.ts";
import { mountFailed, mountinfoUnreadable, notAttached, notMounted } from "./errors.ts";
import { findMount, parseMountinfo, type MountLine } from "./mountinfo.ts";

export type VolumeState =
  | { state: "absent" }
  | { state: "unmounted"; node: string }
  | {
      state: "mounted";
      node: string;
      folder: string;
      fsType: string;
      mountPoint: string;
      /** st_dev of the mount point when found: an unmount changes it to the parent filesystem's. */
      dev: number | undefined;
    };

export type Mounted = Extract<VolumeState, { state: "mounted" }>;

export interface VolumeSpec {
  /** The configured device name, for messages. */
  device: string;
  /** `volume UUID …` / `volume labelled "…"`. */
  words: string;
  uuid?: string | undefined;
  label?: string | undefined;
  /** "/"-rooted folder inside the volume to serve. */
  within: string;
  byUuidDir: string;
  byLabelDir: string;
  mountinfo: string;
  /** Where to mount it when it is attached but not mounted; undefined: never mount. */
  mountDir?: string | undefined;
  mountCommand: string;
  cacheMs: number;
  now: () => number;
  logger: Logger;
}

const MOUNT_TIMEOUT_MS = 30_000;

/**
 * A label as udev spells it in /dev/disk/by-label: bytes other than ASCII letters, digits and
 * `#+-.:=@_` become `\xNN` (a space is `\x20`); valid non-ASCII UTF-8 is kept as it is.
 */
export function udevEncode(label: string): string {
  let out = "";
  for (const char of label) {
    const ascii = char.codePointAt(0) ?? 0;
    if (ascii > 0x7f || /[0-9A-Za-z#+\-.:=@_]/.test(char)) out += char;
    else out += `\\x${ascii.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** The node a link leads to, or undefined when there is no link (or it dangles). */
async function realpathOrNone(link: string, device: string): Promise<string | undefined> {
  try {
    return await fs.realpath(link);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw fsError(error, device, link);
  }
}

export class Volume {
  readonly #spec: VolumeSpec;
  #cached: { at: number; value: VolumeState } | undefined;
  #mounting: Promise<VolumeState> | undefined;
  #mountFailure: { at: number; error: FerryError } | undefined;

  constructor(spec: VolumeSpec) {
    this.#spec = spec;
  }

  /**
   * The volume's state. A recent answer is reused only while two syscalls confirm it: the link
   * still leads to the same node (an unplug removes it) and the mount point still has the same
   * st_dev (an unmount changes it), so the cache never outlives a detach. `fresh` reads the mount
   * table again (presence checks during transfers).
   */
  async state(fresh = false): Promise<VolumeState> {
    const cached = this.#cached;
    if (
      !fresh &&
      cached &&
      this.#spec.now() - cached.at < this.#spec.cacheMs &&
      (await this.#still(cached.value))
    ) {
      return cached.value;
    }
    const value = await this.#look();
    this.#remember(value);
    return value;
  }

  async #still(value: VolumeState): Promise<boolean> {
    const found = await this.#node();
    if (value.state === "absent" || found === undefined)
      return value.state === "absent" && found === undefined;
    if (found.node !== value.node) return false;
    if (value.state === "unmounted") return true;
    const stats = await fs.stat(value.mountPoint).catch(() => undefined);
    return value.dev !== undefined && stats?.dev === value.dev;
  }

  /** The mounted volume, mounting it first where allowed; UNAVAILABLE (or a mount error) when it is not. */
  async attach(): Promise<Mounted> {
    let found = await this.state();
    if (found.state === "unmounted" && this.#spec.mountDir !== undefined) {
      this.#mounting ??= this.#mount(found.node, this.#spec.mountDir).finally(() => {
        this.#mounting = undefined;
      });
      found = await this.#mounting;
    }
    if (found.state === "mounted") return found;
    throw found.state === "absent"
      ? notAttached(this.#spec.device, this.#spec.words)
      : notMounted(this.#spec.device, this.#spec.words, found.node);
  }

  #remember(value: VolumeState): void {
    const before = this.#cached?.value;
    this.#cached = { at: this.#spec.now(), value };
    const { logger, device, words } = this.#spec;
    const was = before?.state === "mounted" ? before.folder : undefined;
    const now = value.state === "mounted" ? value.folder : undefined;
    if (was === now) return;
    if (now !== undefined) logger.info({ device, folder: now }, `${words} is attached at ${now}`);
    else if (was !== undefined) logger.info({ device }, `${words} is no longer attached`);
  }

  async #node(): Promise<{ link: string; node: string } | undefined> {
    const { uuid, label, byUuidDir, byLabelDir } = this.#spec;
    const dir = uuid !== undefined ? byUuidDir : byLabelDir;
    const names = uuid !== undefined ? [uuid] : [...new Set([udevEncode(label ?? ""), label ?? ""])];
    for (const name of names.filter((n) => n !== "" && !n.includes("/"))) {
      const link = join(dir, name);
      const node = await realpathOrNone(link, this.#spec.device);
      if (node !== undefined) return { link, node };
    }
    if (uuid === undefined) return undefined;
    // FAT serials are upper case in by-uuid (1234-ABCD), ext4 UUIDs lower case: accept either spelling.
    const entries = await fs.readdir(dir).catch(() => []);
    const other = entries.find((entry) => entry.toLowerCase() === uuid.toLowerCase() && entry !== uuid);
    if (other === undefined) return undefined;
    const node = await realpathOrNone(join(dir, other), this.#spec.device);
    return node === undefined ? undefined : { link: join(dir, other), node };
  }

  async #look(): Promise<VolumeState> {
    const found = await this.#node();
    if (!found) return { state: "absent" };
    const { link, node } = found;
    // A link left dangling for a moment after the device went counts as absent.
    const stats = await fs.stat(node, { bigint: true }).catch(() => undefined);
    if (!stats) return { state: "absent" };
    let text: string;
    try {
      text = await fs.readFile(this.#spec.mountinfo, "utf8");
    } catch (error) {
      throw mountinfoUnreadable(this.#spec.device, this.#spec.mountinfo, error);
    }
    const devId = stats.isBlockDevice() ? majorMinor(stats.rdev) : undefined;
    const matches = (line: MountLine) =>
      line.source === node || line.source === link || (devId !== undefined && line.devId === devId);
    const mount = findMount(parseMountinfo(text), matches, this.#spec.within);
    if (!mount) return { state: "unmounted", node };
    const { mountPoint, fsType } = mount.line;
    const dev = (await fs.stat(mountPoint).catch(() => undefined))?.dev;
    return { state: "mounted", node, folder: mount.folder, fsType, mountPoint, dev };
  }

  async #mount(node: string, dir: string): Promise<VolumeState> {
    const { device, words, mountCommand, cacheMs, now } = this.#spec;
    // A mount that just failed is not tried again by every operation of the same burst.
    const failure = this.#mountFailure;
    if (failure && now() - failure.at < cacheMs) throw failure.error;
    const shown = `${mountCommand} ${node} ${dir}`;
    try {
      await fs.mkdir(dir, { recursive: true });
      await run(mountCommand, [node, dir]);
      const after = await this.state(true);
      if (after.state === "mounted") return after;
      throw mountFailed(
        device,
        words,
        shown,
        "it succeeded, yet the volume is not in the mount table",
        "UNAVAILABLE",
      );
    } catch (error) {
      const failed = explainMountError(device, words, shown, error);
      this.#mountFailure = { at: now(), error: failed };
      this.#spec.logger.warn({ device, err: failed }, failed.message);
      throw failed;
    }
  }
}

/** Linux's dev_t split into "major:minor", as mountinfo writes it. */
function majorMinor(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

class CommandFailed extends Error {
  readonly exitCode: number | string | undefined;
  readonly stderr: string;
  readonly timedOut: boolean;
  constructor(message: string, exitCode: number | string | undefined, stderr: string, timedOut: boolean) {
    super(message);
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.timedOut = timedOut;
  }
}

/** Runs a command without a shell; rejects with CommandFailed unless it exits 0. */
function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: MOUNT_TIMEOUT_MS, encoding: "utf8" }, (error, _stdout, stderr) => {
      if (!error) {
        resolve();
        return;
      }
      const exitCode =
        typeof error.code === "number" || typeof error.code === "string" ? error.code : undefined;
      reject(new CommandFailed(error.message, exitCode, stderr, error.killed === true));
    });
  });
}

function explainMountError(device: string, words: string, shown: string, error: unknown): FerryError {
  if (!(error instanceof CommandFailed)) {
    if (error instanceof Error && "code" in error && (error.code === "EACCES" || error.code === "EPERM")) {
      return mountFailed(
        device,
        words,
        shown,
        `cannot create the mount folder (${error.code})`,
        "PERMISSION",
        error,
      );
    }
    if (isFerryError(error)) return error;
    return mountFailed(device, words, shown, String(error), "UNAVAILABLE", error);
  }
  if (error.exitCode === "ENOENT") {
    return mountFailed(device, words, shown, "no such command on this machine", "UNSUPPORTED", error);
  }
  if (error.timedOut) {
    return mountFailed(
      device,
      words,
      shown,
      `no answer in ${MOUNT_TIMEOUT_MS / 1000} s`,
      "UNAVAILABLE",
      error,
    );
  }
  const said = error.stderr.trim().split("\n").slice(-2).join(" ").trim();
  const detail = `exited with ${String(error.exitCode)}${said === "" ? "" : `: ${said}`}`;
  // util-linux words: "only root can do that", "must be superuser", "permission denied".
  const denied = /only root|superuser|permission denied|not permitted/i.test(said);
  return mountFailed(device, words, shown, detail, denied ? "PERMISSION" : "UNAVAILABLE", error);
}
