/**
 * Moonraker's API methods over the virtual printer, by their JSON-RPC names. The HTTP routes
 * (server.ts) and the websocket call the same methods with the same arguments, as Moonraker does.
 * Answers and refusals follow Moonraker's docs and source: file_manager.py, job_queue.py,
 * klippy_apis.py, and Klipper's virtual_sdcard and pause_resume behind them.
 */
import { posix } from "node:path";
import {
  nodeNames,
  walkFiles,
  type SimFile,
  type SimFolder,
  type SimNode,
  type SimStorage,
  type VirtualPrinter,
} from "../printer/index.ts";
import { MoonrakerError } from "./errors.ts";
import {
  allObjects,
  filePath,
  GCODES_PATH,
  historyJobId,
  klippyMessage,
  klippyState,
  metadataUuid,
  objectNames,
  pick,
  printStatsState,
} from "./klipper.ts";
import { readGcode } from "../printer/index.ts";

/** Moonraker's G-code extensions (file_manager.py VALID_GCODE_EXTS). */
export const GCODE_EXTS = [".gcode", ".g", ".gco", ".ufp", ".nc"];
export const isGcodeName = (name: string) => GCODE_EXTS.includes(posix.extname(name).toLowerCase());

export type Args = Record<string, unknown>;

/** What the websocket connection making a call is, for the methods that need one. */
export interface Connection {
  readonly uid: number;
  needAuth: boolean;
  identified: boolean;
  /** The objects and fields it subscribed to (null: all fields). */
  subscription: Record<string, readonly string[] | null> | undefined;
  /** What it was last sent of its subscription. */
  sent: Record<string, Record<string, unknown>>;
}

export interface FaceOptions {
  extruders: 1 | 2;
  chamber: boolean;
  apiKey: string | undefined;
}

interface QueuedJob {
  filename: string;
  job_id: string;
  time_added: number;
}

/** What Moonraker's history remembers of a file's last print. */
interface FileHistory {
  jobId: string;
  printStartTime: number;
}

const DEFAULT = Symbol("no default");

export function getStr(args: Args, key: string, fallback: string | typeof DEFAULT = DEFAULT): string {
  const value = args[key];
  if (value === undefined || value === null) {
    if (fallback === DEFAULT) throw new MoonrakerError(400, `No data for argument: ${key}`);
    return fallback;
  }
  if (typeof value !== "string") throw new MoonrakerError(400, `Invalid Type for argument: ${key}`);
  return value;
}

export function getBool(args: Args, key: string, fallback: boolean): boolean {
  const value = args[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") return value.toLowerCase() === "true";
  throw new MoonrakerError(400, `Invalid Type for argument: ${key}`);
}

function getList(args: Args, key: string): string[] {
  const value = args[key];
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === "string")
    return value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  throw new MoonrakerError(400, `No data for argument: ${key}`);
}

export class MoonrakerFace {
  readonly printer: VirtualPrinter;
  readonly storage: SimStorage;
  readonly options: FaceOptions;
  #klippyConnected = true;
  /** Called when Klippy connects or leaves (the server tells its websockets at once). */
  klippyChanged: () => void = () => undefined;
  readonly #history = new WeakMap<SimFile, FileHistory>();
  #queue: QueuedJob[] = [];
  #queueState = "paused";
  #nextQueueId = 0x66d99c90;
  websocketCount = () => 0;

  constructor(printer: VirtualPrinter, options: FaceOptions) {
    this.printer = printer;
    this.storage = printer.primary;
    this.options = options;
    // Moonraker's history records every job Klipper runs, wherever it was started.
    printer.onChange(() => {
      const job = printer.job;
      if (!job || this.#history.get(job.file)?.jobId === historyJobId(job)) return;
      this.#history.set(job.file, { jobId: historyJobId(job), printStartTime: job.startedAt / 1000 });
    });
  }

  /** Klippy connected to Moonraker (false: Moonraker answers, Klipper does not). */
  get klippyConnected(): boolean {
    return this.#klippyConnected;
  }

  set klippyConnected(connected: boolean) {
    if (connected === this.#klippyConnected) return;
    this.#klippyConnected = connected;
    this.klippyChanged();
  }

  /** Unix time now, seconds with a fraction, as Moonraker's `modified`. */
  now(): number {
    return this.printer.clock() / 1000;
  }

  klippy(): ReturnType<typeof klippyState> {
    return klippyState(this.printer, this.klippyConnected);
  }

  objects(): Record<string, Record<string, unknown>> {
    return allObjects(this.printer, { ...this.options, klippyConnected: this.klippyConnected });
  }

  #needKlippy(): void {
    if (!this.klippyConnected) throw new MoonrakerError(503, "Klippy Host not connected");
  }

  // ---- paths ----

  /** "gcodes/a/b" → the root and the node (undefined when missing). */
  resolve(requestPath: string): { root: string; parts: string[]; node: SimNode | undefined } {
    const normal = posix.normalize(`/${requestPath}`).replace(/^\/+|\/+$/g, "");
    const [root = "", ...parts] = normal.split("/");
    if (root !== "gcodes") throw new MoonrakerError(400, `Invalid root path (${root})`);
    return { root, parts, node: this.storage.resolve(parts) };
  }

  diskPath(parts: readonly string[]): string {
    return [GCODES_PATH, ...parts].join("/");
  }

  pathInfo(node: SimNode): { modified: number; size: number; permissions: string } {
    return {
      modified: node.mTimestamp,
      size: node.kind === "file" ? node.size : 4096,
      permissions: "rw",
    };
  }

  /** The item of a file manager answer ({path, root, modified, size, permissions}). */
  item(parts: readonly string[], node: SimNode | undefined): Record<string, unknown> {
    const info = node ? this.pathInfo(node) : { modified: 0, size: 0, permissions: "" };
    return { path: parts.join("/"), root: "gcodes", ...info };
  }

  /** file_manager's _handle_operation_check: the loaded file (or a folder holding it) is in use. */
  checkNotInUse(node: SimNode): void {
    if (this.printer.isPrinted(node)) throw new MoonrakerError(403, "File currently in use");
  }

  // ---- printing ----

  /** Klipper's SDCARD_PRINT_FILE, as printer.print.start, an upload with print=true and the queue call it. */
  startPrint(filename: string): void {
    this.#needKlippy();
    const state = this.klippy();
    if (state !== "ready") throw new MoonrakerError(400, klippyMessage(this.printer, state));
    const parts = filename.replace(/^\/+/, "").split("/");
    const node = this.storage.resolve(parts);
    const activity = this.printer.activity;
    if (activity === "printing" || activity === "paused" || activity === "attention") {
      throw new MoonrakerError(400, "SD busy");
    }
    if (node?.kind !== "file") throw new MoonrakerError(400, "Unable to open file");
    // Klipper prints what it is given; the virtual printer wants idle/finished/stopped.
    if (activity === "busy") this.printer.setActivity("idle");
    this.printer.startPrint(this.storage, node);
  }

  // ---- the methods ----

  /** Calls a method; its refusals are MoonrakerErrors (or the virtual printer's SimHttpErrors). */
  call(method: string, args: Args, conn: Connection | undefined): unknown {
    const handler = this.#methods[method];
    if (!handler) throw new MoonrakerError(404, "Method not found");
    return handler(args, conn);
  }

  has(method: string): boolean {
    return method in this.#methods;
  }

  readonly #methods: Record<string, (args: Args, conn: Connection | undefined) => unknown> = {
    "server.info": () => ({
      klippy_connected: this.klippyConnected,
      klippy_state: this.klippy(),
      components: [
        "database",
        "file_manager",
        "klippy_apis",
        "machine",
        "data_store",
        "history",
        "job_queue",
        "job_state",
      ],
      failed_components: [],
      registered_directories: ["gcodes"],
      warnings: [],
      websocket_count: this.websocketCount(),
      moonraker_version: "v0.9.3-ferry-sim",
      missing_klippy_requirements: [],
      api_version: [1, 5, 0],
      api_version_string: "1.5.0",
    }),
    "server.connection.identify": (args, conn) => {
      if (!conn) throw new MoonrakerError(404, "Method not found for transport HTTP");
      if (conn.identified) throw new MoonrakerError(400, "Connection already identified");
      const type = getStr(args, "type").toLowerCase();
      getStr(args, "client_name");
      getStr(args, "version");
      getStr(args, "url");
      const key = args.api_key;
      if (this.options.apiKey !== undefined) {
        if (typeof key === "string") {
          if (key !== this.options.apiKey) throw new MoonrakerError(401, "Invalid API Key");
          conn.needAuth = false;
        } else if (conn.needAuth) {
          throw new MoonrakerError(401, "Unauthorized");
        }
      }
      if (!["web", "mobile", "desktop", "display", "bot", "agent", "other"].includes(type)) {
        throw new MoonrakerError(400, `Invalid Client Type: ${type}`);
      }
      conn.identified = true;
      return { connection_id: conn.uid };
    },
    "server.websocket.id": (_args, conn) => {
      if (!conn) throw new MoonrakerError(404, "Method not found for transport HTTP");
      return { websocket_id: conn.uid };
    },
    "printer.info": () => {
      this.#needKlippy();
      const state = this.klippy();
      return {
        state,
        state_message: klippyMessage(this.printer, state),
        hostname: "ferry-sim",
        klipper_path: "/home/pi/klipper",
        python_path: "/home/pi/klippy-env/bin/python",
        process_id: 4242,
        user_id: 1000,
        group_id: 1000,
        log_file: "/home/pi/printer_data/logs/klippy.log",
        config_file: "/home/pi/printer_data/config/printer.cfg",
        software_version: "v0.12.0-sim",
        cpu_info: "4 core ARMv7 Processor rev 4 (v7l)",
      };
    },
    "printer.objects.list": () => {
      this.#needKlippy();
      return { objects: objectNames(this.options) };
    },
    "printer.objects.query": (args) => {
      this.#needKlippy();
      return { eventtime: this.#eventtime(), status: pick(this.objects(), objectRequest(args)) };
    },
    "printer.objects.subscribe": (args, conn) => {
      if (!conn) throw new MoonrakerError(404, "Subscriptions not available for HTTP transport");
      this.#needKlippy();
      const request = objectRequest(args);
      const status = pick(this.objects(), request);
      conn.subscription = Object.keys(request).length === 0 ? undefined : request;
      conn.sent = status;
      return { eventtime: this.#eventtime(), status };
    },
    "printer.print.start": (args) => {
      this.startPrint(getStr(args, "filename"));
      return "ok";
    },
    // Klipper's PAUSE, RESUME and CANCEL_PRINT answer "ok" when there is nothing to do.
    "printer.print.pause": () => {
      this.#needKlippy();
      if (this.printer.activity === "printing") this.printer.pause();
      return "ok";
    },
    "printer.print.resume": () => {
      this.#needKlippy();
      const activity = this.printer.activity;
      if (activity === "paused" || activity === "attention") this.printer.resume();
      return "ok";
    },
    "printer.print.cancel": () => {
      this.#needKlippy();
      const state = printStatsState(this.printer);
      if (state === "printing" || state === "paused") this.printer.cancel();
      return "ok";
    },
    "server.files.roots": () => [{ name: "gcodes", path: GCODES_PATH, permissions: "rw" }],
    "server.files.list": (args) => {
      const root = getStr(args, "root", "gcodes");
      if (root !== "gcodes")
        throw new MoonrakerError(400, `Failed to build file list, invalid path: ${root}: None`);
      return [...walkFiles(this.storage.root)]
        .filter((file) => isGcodeName(file.name))
        .map((file) => ({ path: filePath(file), ...this.pathInfo(file) }))
        .sort((a, b) => (a.path.toLowerCase() < b.path.toLowerCase() ? -1 : 1));
    },
    "server.files.metadata": (args) => {
      const filename = getStr(args, "filename");
      const node = this.storage.resolve(filename.replace(/^\/+/, "").split("/"));
      if (node?.kind !== "file" || !isGcodeName(node.name)) {
        throw new MoonrakerError(404, `Metadata not available for <${filename}>`);
      }
      return { ...this.metadata(node), filename };
    },
    "server.files.get_directory": (args) => {
      const { parts, node } = this.resolve(getStr(args, "path", "gcodes"));
      const extended = getBool(args, "extended", false);
      if (node?.kind !== "folder")
        throw new MoonrakerError(400, `Directory does not exist (${this.diskPath(parts)})`);
      return this.#listDirectory(node, extended);
    },
    "server.files.post_directory": (args) => {
      const { parts, node } = this.resolve(getStr(args, "path"));
      const disk = this.diskPath(parts);
      if (node) throw new MoonrakerError(400, `[Errno 17] File exists: '${disk}'`);
      const parent = this.storage.resolve(parts.slice(0, -1));
      const name = parts.at(-1);
      if (parent?.kind !== "folder" || name === undefined) {
        throw new MoonrakerError(400, `[Errno 2] No such file or directory: '${disk}'`);
      }
      const folder = this.storage.addFolder(parent, name, this.now());
      return { item: this.item(parts, folder), action: "create_dir" };
    },
    "server.files.delete_directory": (args) => {
      const path = getStr(args, "path");
      const { parts, node } = this.resolve(path);
      if (parts.length === 0) throw new MoonrakerError(400, "Cannot delete root directory");
      if (node?.kind !== "folder") throw new MoonrakerError(400, `Directory does not exist (${path})`);
      if (getBool(args, "force", false)) this.checkNotInUse(node);
      else if (node.children.size > 0) {
        throw new MoonrakerError(400, `[Errno 39] Directory not empty: '${this.diskPath(parts)}'`);
      }
      this.storage.remove(node);
      return { item: this.item(parts, undefined), action: "delete_dir" };
    },
    "server.files.delete_file": (args) => this.deleteFile(getStr(args, "path")),
    "server.job_queue.status": () => this.#queueStatus(),
    "server.job_queue.post_job": (args) => {
      const filenames = getList(args, "filenames");
      for (const name of filenames) {
        if (this.storage.resolve(name.split("/"))?.kind !== "file") {
          throw new MoonrakerError(400, `G-Code File ${name} does not exist`);
        }
      }
      if (getBool(args, "reset", false)) this.#queue = [];
      for (const filename of filenames) {
        this.#queue.push({
          filename,
          job_id: (this.#nextQueueId++).toString(16).toUpperCase().padStart(16, "0"),
          time_added: this.now(),
        });
      }
      return this.#queueStatus();
    },
    "server.job_queue.delete_job": (args) => {
      if (getBool(args, "all", false)) this.#queue = [];
      else {
        const ids = new Set(getList(args, "job_ids"));
        this.#queue = this.#queue.filter((job) => !ids.has(job.job_id));
      }
      return this.#queueStatus();
    },
    "server.job_queue.pause": () => {
      this.#queueState = "paused";
      return this.#queueStatus();
    },
    "server.job_queue.start": () => {
      const state = printStatsState(this.printer);
      if (this.#queue.length === 0 || state === "printing" || state === "paused") this.#queueState = "paused";
      else {
        this.#queueState = "loading";
        // Moonraker loads the next job a moment later (job_queue.py: delay_callback(0.01, _pop_job)).
        setTimeout(() => {
          this.#popJob();
        }, 10);
      }
      return this.#queueStatus();
    },
    "server.job_queue.jump": (args) => {
      const id = getStr(args, "job_id");
      const job = this.#queue.find((j) => j.job_id === id);
      if (!job) throw new MoonrakerError(400, `Invalid job id: ${id}`);
      this.#queue = [job, ...this.#queue.filter((j) => j !== job)];
      return this.#queueStatus();
    },
  };

  #popJob(): void {
    if (this.#queueState !== "loading") return;
    const job = this.#queue[0];
    if (!job) {
      this.#queueState = "paused";
      return;
    }
    try {
      this.#queueState = "starting";
      this.startPrint(job.filename);
      this.#queue.shift();
    } catch {
      // Moonraker logs a failed load and pauses the queue.
    }
    this.#queueState = "paused";
  }

  #queueStatus(): Record<string, unknown> {
    const now = this.now();
    return {
      queued_jobs: this.#queue.map((job) => ({ ...job, time_in_queue: now - job.time_added })),
      queue_state: this.#queueState,
    };
  }

  /** Klipper's monotonic clock, as `eventtime`. */
  #eventtime(): number {
    return Math.round(performance.now()) / 1000;
  }

  eventtime(): number {
    return this.#eventtime();
  }

  #listDirectory(folder: SimFolder, extended: boolean): Record<string, unknown> {
    const dirs: Record<string, unknown>[] = [];
    const files: Record<string, unknown>[] = [];
    for (const child of folder.children.values()) {
      if (child.kind === "folder") dirs.push({ ...this.pathInfo(child), dirname: child.name });
      else {
        const metadata = extended && isGcodeName(child.name) ? this.metadata(child) : {};
        files.push({ ...this.pathInfo(child), ...metadata, filename: child.name });
      }
    }
    return {
      dirs,
      files,
      disk_usage: { total: this.storage.capacity, used: this.storage.used, free: this.storage.free },
      root_info: { name: "gcodes", permissions: "rw" },
    };
  }

  /** Moonraker's metadata of a G-code file: what its slicer wrote, and its last print. */
  metadata(file: SimFile): Record<string, unknown> {
    const facts = readGcode(file.content);
    const history = this.#history.get(file);
    return {
      size: file.size,
      modified: file.mTimestamp,
      uuid: metadataUuid(file),
      file_processors: [],
      ...(facts.estimatedS === undefined ? {} : { slicer: "PrusaSlicer", estimated_time: facts.estimatedS }),
      ...(facts.toolTarget === undefined ? {} : { first_layer_extr_temp: facts.toolTarget }),
      ...(facts.bedTarget === undefined ? {} : { first_layer_bed_temp: facts.bedTarget }),
      thumbnails: [],
      print_start_time: history?.printStartTime ?? null,
      job_id: history?.jobId ?? null,
      filename: filePath(file),
    };
  }

  /** DELETE of a file (file_manager.delete_file); `path` starts with the root. */
  deleteFile(path: string): Record<string, unknown> {
    const { parts, node } = this.resolve(path);
    if (node?.kind !== "file") throw new MoonrakerError(400, `Invalid file path: ${path}`);
    this.checkNotInUse(node);
    this.storage.remove(node);
    return { item: this.item(parts, undefined), action: "delete_file" };
  }

  /** Names of a node from the root. */
  names(node: SimNode): string[] {
    return nodeNames(node);
  }
}

/** `objects` of a query or subscription: {name: null | [fields]}. */
function objectRequest(args: Args): Record<string, readonly string[] | null> {
  const objects = args.objects;
  if (objects === null || typeof objects !== "object" || Array.isArray(objects)) {
    throw new MoonrakerError(400, "No data for argument: objects");
  }
  const out: Record<string, readonly string[] | null> = {};
  for (const [name, fields] of Object.entries(objects as Record<string, unknown>)) {
    out[name] = Array.isArray(fields) ? fields.map(String) : null;
  }
  return out;
}
