/**
 * A volume that comes and goes (USB stick, SD card, a drone's flash), found by filesystem UUID or
 * label. Every operation looks the volume up (by-uuid/by-label link → device node → its mount in
 * mountinfo) and hands the work to a `local` adapter on the mounted folder; while the volume is away
 * every call fails with UNAVAILABLE, so the engine parks the work and resumes it when it is back.
 * Running reads and writes re-check the volume as they go and stop as soon as it is pulled.
 */
import { sha256Of } from "../digest.ts";
import fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { throwIfAborted, raceAbort, toFerryError, type FerryError } from "../../core/errors.ts";
import { dirname, normalizePath } from "../../core/paths.ts";
import {
  assertCapabilitiesMatch,
  defineStorageAdapter,
  type AdapterContext,
  type Capabilities,
  type Entry,
  type HashKind,
  type ListOptions,
  type OpOptions,
  type ReadOptions,
  type StorageAdapter,
  type Usage,
  type WriteOptions,
} from "../adapter.ts";
import { fsError, localError } from "../local/errors.ts";
import { localAdapter } from "../local/local.ts";
import { detached, volumeWords } from "./errors.ts";
import { Volume, type Mounted } from "./volume.ts";
import { Watch, watched, watchedStream } from "./watch.ts";
import { TEMP_NAME } from "../temp-names.ts";

/** The temp files of local's writes (local.ts: TEMP_NAME). */

/** Characters FAT (vfat, exFAT) refuses in names; control characters are refused as well. */
const FAT_FORBIDDEN = '"*:<>?\\|\0';

/**
 * Local's, made safe for any stick: FAT's names (forbidden characters, case-insensitive) and its
 * 2 s times, and two transfers at a time (one USB flash chip gains nothing from eight).
 */
const capabilities: Capabilities = {
  read: true,
  write: true,
  list: "flat",
  listSizes: true,
  modTimePrecisionMs: 2000,
  setModTime: true,
  hashes: ["sha256"],
  rangeRead: true,
  resumableWrite: "none",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  maxConcurrency: 2,
  forbiddenChars: FAT_FORBIDDEN,
  maxNameBytes: 255,
  caseInsensitive: true,
  watch: false,
  usage: true,
  removable: true,
};

const folderOption = z.string().min(1, "must not be empty");

export const removableOptionsSchema = z
  .strictObject({
    uuid: z
      .string()
      .min(1)
      .regex(/^[^/]+$/, "a filesystem UUID such as 1234-ABCD")
      .optional(),
    label: z.string().min(1).optional(),
    /** Folder inside the volume to serve (default: its root). */
    path: z
      .string()
      .default("")
      .refine((path) => !path.split("/").includes(".."), "must stay inside the volume"),
    mount: z.boolean().default(false),
    /** Where `mount: true` mounts the volume (default: <temp dir>/ferry-mounts/<uuid or label>). */
    mount_dir: folderOption.optional(),
    by_uuid_dir: folderOption.default("/dev/disk/by-uuid"),
    by_label_dir: folderOption.default("/dev/disk/by-label"),
    mountinfo: folderOption.default("/proc/self/mountinfo"),
  })
  .superRefine((options, ctx) => {
    if ((options.uuid === undefined) === (options.label === undefined)) {
      const both = options.uuid !== undefined;
      ctx.addIssue({
        code: "custom",
        message: both ? "set either uuid or label, not both" : "set uuid or label to say which volume",
        path: [both ? "label" : "uuid"],
      });
    }
  });

export type RemovableOptions = z.output<typeof removableOptionsSchema>;

/** Knobs for tests: a fake mount command, a clock and the lookup cache. */
export interface RemovableTuning {
  mountCommand?: string;
  now?: () => number;
  /** How long a lookup is reused by the next operations (default 500 ms). */
  cacheMs?: number;
}

/** A name FAT cannot store as given, or undefined. */
function fatProblem(name: string): string | undefined {
  for (const char of name) {
    if (FAT_FORBIDDEN.includes(char)) return `names may not contain ${JSON.stringify(char)} (FAT)`;
    if (char.charCodeAt(0) < 0x20) return `names may not contain control characters (FAT)`;
  }
  // vfat silently drops trailing dots: the file would come back under another name.
  if (/[. ]$/.test(name)) return "names may not end with a dot or a space (FAT)";
  return undefined;
}

/**
 * The first folder between the mount point and the served folder (`path`) that is a symbolic link
 * on the volume, relative to the mount point: a stick's link may lead anywhere on this machine.
 */
async function linkOnTheWay(state: Mounted): Promise<string | undefined> {
  let at = state.mountPoint;
  for (const part of relative(state.mountPoint, state.folder)
    .split(sep)
    .filter((p) => p !== "")) {
    at = join(at, part);
    const stats = await fs.lstat(at).catch(() => undefined);
    if (stats === undefined) return undefined;
    if (stats.isSymbolicLink()) return relative(state.mountPoint, at);
  }
  return undefined;
}

/** Whether `folder` (`dir` of `root`) is that folder itself, reached through no symbolic link. */
async function isReally(folder: string, root: string, dir: string): Promise<boolean> {
  try {
    const [real, realRoot] = await Promise.all([fs.realpath(folder), fs.realpath(root)]);
    return real === (dir === "" ? realRoot : join(realRoot, ...dir.split("/")));
  } catch {
    return false;
  }
}

interface Attached {
  state: Mounted;
  local: StorageAdapter;
}

export class RemovableStorage implements StorageAdapter {
  readonly kind = "removable";
  readonly name: string;
  readonly capabilities: Readonly<Capabilities> = removableAdapter.capabilities;
  readonly #words: string;
  readonly #volume: Volume;
  readonly #context: AdapterContext;
  #local: { folder: string; adapter: StorageAdapter } | undefined;
  /** Folders (in the volume) where a write was cut off by a pull, with the time it was. */
  readonly #orphans = new Map<string, number>();
  #writing = 0;

  constructor(options: RemovableOptions, context: AdapterContext, tuning: RemovableTuning = {}) {
    this.name = context.name;
    this.#context = context;
    this.#words = volumeWords(options);
    const at = (path: string) => resolve(context.baseDir, path);
    const slug = (
      options.uuid !== undefined ? `uuid-${options.uuid}` : `label-${options.label ?? ""}`
    ).replace(/[^A-Za-z0-9._-]/g, "_");
    this.#volume = new Volume({
      device: context.name,
      words: this.#words,
      uuid: options.uuid,
      label: options.label,
      within: `/${normalizePath(options.path)}`,
      byUuidDir: at(options.by_uuid_dir),
      byLabelDir: at(options.by_label_dir),
      mountinfo: at(options.mountinfo),
      mountDir: options.mount ? at(options.mount_dir ?? join(tmpdir(), "ferry-mounts", slug)) : undefined,
      mountCommand: tuning.mountCommand ?? "mount",
      cacheMs: tuning.cacheMs ?? 500,
      now: tuning.now ?? Date.now,
      logger: context.logger,
    });
  }

  async #attach(signal: AbortSignal | undefined): Promise<Attached> {
    throwIfAborted(signal);
    const state = await raceAbort(this.#volume.attach(), signal);
    const link = await linkOnTheWay(state);
    if (link !== undefined) {
      throw localError(
        "PERMISSION",
        this.name,
        "",
        `${link} on the volume is a symbolic link; Ferry serves no folder through a link`,
      );
    }
    if (this.#local?.folder !== state.folder) {
      const adapter = localAdapter.create({ path: state.folder }, this.#context);
      this.#local = { folder: state.folder, adapter };
    }
    // Not while a write of ours runs: its temp file may be among them.
    if (this.#orphans.size > 0 && this.#writing === 0) await this.#clearOrphans(state.folder);
    return { state, local: this.#local.adapter };
  }

  /**
   * A write cut off by a pull cannot remove its temp file (the path then leads to the bare mount
   * folder): up to half a video would stay hidden on the stick. Once the volume is back, temp
   * files in that folder last written before the pull are removed.
   */
  async #clearOrphans(root: string): Promise<void> {
    for (const [dir, lostAt] of this.#orphans) {
      this.#orphans.delete(dir);
      const folder = dir === "" ? root : join(root, ...dir.split("/"));
      // Only a folder really there: a link on the way would lead the removals off the volume.
      if (!(await isReally(folder, root, dir))) continue;
      const names = await fs.readdir(folder).catch(() => []);
      for (const name of names.filter((n) => TEMP_NAME.test(n))) {
        const stats = await fs.lstat(join(folder, name)).catch(() => undefined);
        // FAT keeps times to 2 s; anything newer may be another write's.
        if (stats?.isFile() && stats.mtimeMs <= lostAt + 2000) {
          await fs.rm(join(folder, name), { force: true }).catch((error: unknown) => {
            this.#context.logger.debug({ path: join(dir, name), err: error }, "cannot remove a temp file");
          });
        }
      }
    }
  }

  /** UNAVAILABLE when the volume is no longer mounted where `state` found it (a fresh look). */
  async #lostFrom(state: Mounted, path: string, cause?: unknown): Promise<FerryError | undefined> {
    try {
      const now = await this.#volume.state(true);
      if (now.state === "mounted" && now.folder === state.folder) return undefined;
      return detached(this.name, this.#words, path, cause);
    } catch (error) {
      return toFerryError(error, "UNAVAILABLE");
    }
  }

  /**
   * The error to report for a failed call: an unmounted volume leaves an empty mount folder
   * behind, where a call fails with NOT_FOUND (or lists nothing); that is a detach, not a fact.
   */
  async #explain(error: unknown, state: Mounted, path: string): Promise<FerryError> {
    const failure = toFerryError(error);
    if (failure.code === "ABORTED") return failure;
    return (await this.#lostFrom(state, path, failure)) ?? failure;
  }

  async #op<T>(
    path: string,
    signal: AbortSignal | undefined,
    changes: boolean,
    work: (local: StorageAdapter) => Promise<T>,
  ): Promise<T> {
    const at = await this.#attach(signal);
    let result: T;
    try {
      result = await work(at.local);
    } catch (error) {
      throw await this.#explain(error, at.state, path);
    }
    // A change made just as the volume went may have landed in the bare mount folder instead.
    const lost = changes ? await this.#lostFrom(at.state, path) : undefined;
    if (lost) throw lost;
    return result;
  }

  #watch(state: Mounted, path: string): Watch {
    return new Watch(() => this.#lostFrom(state, path));
  }

  /** Refuses names this volume may not be able to create (it may be FAT). */
  #checkNew(input: string): void {
    const path = normalizePath(input);
    for (const name of path === "" ? [] : path.split("/")) {
      const problem = fatProblem(name);
      if (problem !== undefined) throw localError("NAME_INVALID", this.name, path, problem);
    }
  }

  async *list(dir: string, options: ListOptions = {}): AsyncIterable<Entry> {
    const at = await this.#attach(options.signal);
    try {
      yield* at.local.list(dir, options);
    } catch (error) {
      throw await this.#explain(error, at.state, dir);
    }
    // An unmount mid-listing would pass a partial (or empty) listing off as the whole.
    const lost = await this.#lostFrom(at.state, dir);
    if (lost) throw lost;
  }

  stat(path: string, options: OpOptions = {}): Promise<Entry> {
    return this.#op(path, options.signal, false, (local) => local.stat(path, options));
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const at = await this.#attach(options.signal);
    let inner: Readable;
    try {
      inner = await at.local.read(path, options);
    } catch (error) {
      throw await this.#explain(error, at.state, path);
    }
    return watchedStream(inner, this.#watch(at.state, path), (error) => fsError(error, this.name, path));
  }

  async write(
    path: string,
    source: Readable | AsyncIterable<Uint8Array>,
    options: WriteOptions,
  ): Promise<Entry> {
    throwIfAborted(options.signal);
    this.#checkNew(path);
    const at = await this.#attach(options.signal);
    const watch = this.#watch(at.state, path);
    const signal = options.signal ? AbortSignal.any([options.signal, watch.signal]) : watch.signal;
    watch.start();
    this.#writing++;
    try {
      const entry = await at.local.write(path, watched(source, watch), { ...options, signal });
      const lost = await this.#lostFrom(at.state, path);
      if (lost) throw lost;
      return entry;
    } catch (error) {
      // The final name was never touched; local removed its temp file where it still could.
      if (source instanceof Readable) source.destroy();
      const failure = watch.lost ?? (await this.#explain(error, at.state, path));
      if (failure.code === "UNAVAILABLE") this.#orphans.set(dirname(normalizePath(path)), Date.now());
      throw failure;
    } finally {
      this.#writing--;
      watch.stop();
    }
  }

  remove(path: string, options: OpOptions = {}): Promise<void> {
    return this.#op(path, options.signal, true, (local) => local.remove(path, options));
  }

  async mkdir(path: string, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    this.#checkNew(path);
    await this.#op(path, options.signal, true, (local) => local.mkdir(path, options));
  }

  async move(from: string, to: string, options: OpOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    this.#checkNew(to);
    await this.#op(to, options.signal, true, async (local) => {
      if (!local.move) throw localError("UNSUPPORTED", this.name, from, "cannot move");
      await local.move(from, to, options);
    });
  }

  setModTime(path: string, modTime: number, options: OpOptions = {}): Promise<void> {
    return this.#op(path, options.signal, true, async (local) => {
      if (!local.setModTime) throw localError("UNSUPPORTED", this.name, path, "cannot set times");
      await local.setModTime(path, modTime, options);
    });
  }

  async hash(path: string, kind: HashKind, options: OpOptions = {}): Promise<string> {
    if (kind !== "sha256") throw localError("UNSUPPORTED", this.name, path, `no ${kind} hashes here`);
    // Through read(), so that a pull mid-hash stops it like any other read.
    const stream = await this.read(path, options);
    try {
      return await sha256Of(stream, options.signal);
    } catch (error) {
      throw fsError(error, this.name, path);
    }
  }

  usage(options: OpOptions = {}): Promise<Usage> {
    return this.#op("", options.signal, false, async (local) => {
      if (!local.usage) throw localError("UNSUPPORTED", this.name, "", "cannot tell its usage");
      return local.usage(options);
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** An adapter with test knobs; `removableAdapter.create` is this without them. */
export function createRemovable(
  options: RemovableOptions,
  context: AdapterContext,
  tuning: RemovableTuning = {},
): RemovableStorage {
  const adapter = new RemovableStorage(options, context, tuning);
  assertCapabilitiesMatch(adapter);
  return adapter;
}

export const removableAdapter = defineStorageAdapter<RemovableOptions>({
  kind: "removable",
  optionsSchema: removableOptionsSchema,
  capabilities,
  create: (options, context) => new RemovableStorage(options, context),
});
