/**
 * A Klipper printer behind Moonraker as a PrinterDriver: one normalized snapshot from Klipper's
 * printer objects (`/printer/objects/query`), changes pushed over Moonraker's JSON-RPC websocket
 * (`printer.objects.subscribe`, `notify_status_update`, `notify_klippy_*`), print control through
 * `/printer/print/*`, and its gcodes root as a StorageAdapter sharing the same HTTP client.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { FerryError, isFerryError } from "../../core/errors.ts";
import { normalizePath } from "../../core/paths.ts";
import type { AdapterContext } from "../../storage/adapter.ts";
import {
  changesBetween,
  DEFAULT_EVENTS_INTERVAL_MS,
  definePrinterDriver,
  unreachableSnapshot,
  type Activity,
  type EventsOptions,
  type JobSnapshot,
  type PrinterDriver,
  type PrinterEvent,
  type PrinterSnapshot,
  type Temperature,
} from "../driver.ts";
import {
  booleanField,
  metadataSchema,
  numberField,
  objectsListSchema,
  objectsQuerySchema,
  parseWire,
  serverInfoSchema,
  stringField,
  type WireStatus,
} from "./api-types.ts";
import type { MoonrakerClient } from "./client.ts";
import { MoonrakerCallError } from "./errors.ts";
import { StatusFeed } from "./feed.ts";
import { createClient, MoonrakerStorage, type ClientTuning } from "./storage.ts";
import { KIND, type MoonrakerOptions, moonrakerKind } from "./options.ts";

type Signal = { signal?: AbortSignal };

/** What Moonraker says of Klippy (server.info, then webhooks.state once objects are read). */
export interface KlippyInfo {
  connected: boolean;
  /** ready | startup | shutdown | error | disconnected */
  state: string;
}

/** print_stats.state (Klipper's docs: printer_objects.md) while Klippy is ready. */
const JOB_ACTIVITY: Readonly<Record<string, Activity>> = {
  standby: "idle",
  printing: "printing",
  paused: "paused",
  complete: "finished",
  cancelled: "stopped",
  error: "error",
};

/** Klippy's own states other than ready: its host software starting, shut down, or failed. */
const KLIPPY_ACTIVITY: Readonly<Record<string, Activity>> = {
  startup: "busy",
  shutdown: "error",
  error: "error",
};

/** print_stats states that belong to a job (standby has none: Klipper resets print_stats). */
const JOB_STATES: ReadonlySet<string> = new Set(["printing", "paused", "complete", "cancelled", "error"]);

/** Filament sensors are named by the user: `filament_switch_sensor <name>`, `filament_motion_sensor <name>`. */
const SENSOR = /^filament_(switch|motion)_sensor /;
/** Hotends are `extruder`, `extruder1`, …; a chamber is a generic heater or a plain sensor named so. */
const EXTRUDER = /^extruder(\d*)$/;
const CHAMBER = /^(heater_generic|temperature_sensor) chamber$/;

/** The objects the driver reads, with the fields it needs (every field of those it names all). */
export function objectRequest(names: readonly string[]): Record<string, string[]> {
  const request: Record<string, string[]> = {
    webhooks: ["state", "state_message"],
    print_stats: ["state", "filename", "print_duration", "total_duration", "message"],
    virtual_sdcard: ["progress", "is_active"],
    idle_timeout: ["state"],
    heater_bed: ["temperature", "target"],
    extruder: ["temperature", "target"],
  };
  for (const name of names) {
    if (EXTRUDER.test(name) || CHAMBER.test(name)) request[name] = ["temperature", "target"];
    else if (SENSOR.test(name)) request[name] = ["filament_detected", "enabled"];
  }
  return request;
}

/**
 * The contract's activity for Klippy's state and the printer objects. While Klippy is ready,
 * print_stats says it: standby is idle (busy while idle_timeout reports commands running: homing,
 * heating from the console), paused is attention when an enabled filament sensor sees none.
 */
export function activityOf(klippy: string, status: WireStatus): Activity {
  if (klippy !== "ready") return KLIPPY_ACTIVITY[klippy] ?? "busy";
  const state = stringField(status, "print_stats", "state") ?? "";
  const activity = JOB_ACTIVITY[state] ?? "busy";
  if (activity === "idle" && stringField(status, "idle_timeout", "state") === "Printing") return "busy";
  if (activity === "paused") {
    const runout = Object.keys(status).some(
      (name) =>
        SENSOR.test(name) &&
        booleanField(status, name, "enabled") !== false &&
        booleanField(status, name, "filament_detected") === false,
    );
    if (runout) return "attention";
  }
  return activity;
}

/** Heaters by the contract's names: extruder → tool0, extruderN → toolN, heater_bed → bed, chamber. */
export function temperaturesOf(status: WireStatus): Temperature[] {
  const out: Temperature[] = [];
  const add = (object: string, name: Temperature["name"]) => {
    const actual = numberField(status, object, "temperature");
    if (actual === undefined) return;
    const target = numberField(status, object, "target");
    out.push(target === undefined ? { name, actual } : { name, actual, target });
  };
  const extruders = Object.keys(status)
    .map((name) => EXTRUDER.exec(name))
    .filter((match) => match !== null)
    .map((match) => ({ object: match[0], index: match[1] === "" ? 0 : Number(match[1]) }))
    .sort((a, b) => a.index - b.index);
  for (const { object, index } of extruders) add(object, `tool${index}`);
  add("heater_bed", "bed");
  const chamber = Object.keys(status).find((name) => CHAMBER.test(name));
  if (chamber !== undefined) add(chamber, "chamber");
  return out;
}

/** What Moonraker's history tells of the job of a file (its metadata), kept while the job runs. */
interface JobFacts {
  filename: string;
  /** When the job began by print_stats (now less its total duration, pauses included), ms. */
  began: number;
  id?: string;
  startedAt?: number;
  estimatedS?: number;
}

/** How far two readings of one job's beginning may differ (request latency): more is another job. */
const SAME_JOB_MS = 2_000;

export class MoonrakerDriver implements PrinterDriver {
  readonly kind = KIND;
  readonly name: string;
  readonly capabilities = moonrakerKind.capabilities;
  readonly #client: MoonrakerClient;
  readonly #storage: MoonrakerStorage;
  readonly #clock: () => number;
  /** Klipper's loaded objects (printer.objects.list), asked once Klippy is ready; forgotten when it is not. */
  #objects: string[] | undefined;
  #job: JobFacts | undefined;
  readonly #feeds = new Set<StatusFeed>();

  constructor(client: MoonrakerClient, clock: () => number = Date.now) {
    this.#client = client;
    this.name = client.printer;
    this.#clock = clock;
    this.#storage = new MoonrakerStorage(client, { ownsClient: false });
  }

  /** The objects to read, listing Klipper's objects first when they are not known yet. */
  async objectsToRead(
    list: () => Promise<unknown>,
    klippy: string,
    options: Signal,
  ): Promise<Record<string, string[]>> {
    if (klippy !== "ready") this.#objects = undefined;
    else if (this.#objects === undefined) {
      const listed = parseWire(objectsListSchema, await list(), `${this.name}: objects list`);
      this.#objects = listed.objects;
    }
    options.signal?.throwIfAborted();
    return objectRequest(this.#objects ?? []);
  }

  async #serverInfo(options: Signal): Promise<KlippyInfo> {
    const info = await this.#client.result("GET", "/server/info", serverInfoSchema, {
      signal: options.signal,
      operation: "server info",
    });
    return {
      connected: info.klippy_connected,
      state: info.klippy_connected ? info.klippy_state : "disconnected",
    };
  }

  /** Klippy's state and the printer objects, over HTTP. */
  async #read(options: Signal): Promise<{ klippy: KlippyInfo; status: WireStatus }> {
    const klippy = await this.#serverInfo(options);
    if (!klippy.connected) return { klippy, status: {} };
    try {
      const objects = await this.objectsToRead(
        () =>
          this.#client.result("GET", "/printer/objects/list", objectsListSchema, {
            signal: options.signal,
            operation: "objects list",
          }),
        klippy.state,
        options,
      );
      const query = await this.#client.result("POST", "/printer/objects/query", objectsQuerySchema, {
        signal: options.signal,
        operation: "objects query",
        json: { objects },
      });
      return { klippy, status: query.status };
    } catch (error) {
      // Klippy starting or failed may not answer queries; its state alone tells what it does.
      if (klippy.state !== "ready" && error instanceof MoonrakerCallError) return { klippy, status: {} };
      throw error;
    }
  }

  async snapshot(options: Signal = {}): Promise<PrinterSnapshot> {
    try {
      const { klippy, status } = await this.#read(options);
      return await this.build(klippy, status, options);
    } catch (error) {
      // Unreachable, failing or refusing us: report it instead of throwing, as the contract asks.
      return unreachableSnapshot(error, this.#clock());
    }
  }

  /** The snapshot of Klippy's state and the printer objects (the job's facts looked up once). */
  async build(klippy: KlippyInfo, status: WireStatus, options: Signal): Promise<PrinterSnapshot> {
    const observedAt = this.#clock();
    if (!klippy.connected) {
      return {
        connection: "offline",
        activity: "busy",
        rawState: "disconnected",
        temperatures: [],
        observedAt,
        offlineReason: "Moonraker answers, but Klipper is not connected to it (klippy disconnected)",
      };
    }
    const state = stringField(status, "webhooks", "state") ?? klippy.state;
    const jobState = stringField(status, "print_stats", "state") ?? "";
    const snapshot: PrinterSnapshot = {
      connection: "online",
      activity: activityOf(state, status),
      rawState: state === "ready" ? jobState : state,
      temperatures: temperaturesOf(status),
      observedAt,
    };
    const job = await this.#jobOf(status, observedAt, options);
    if (job) snapshot.job = job;
    return snapshot;
  }

  async #jobOf(status: WireStatus, observedAt: number, options: Signal): Promise<JobSnapshot | undefined> {
    const state = stringField(status, "print_stats", "state") ?? "";
    const filename = stringField(status, "print_stats", "filename") ?? "";
    if (!JOB_STATES.has(state) || filename === "") return undefined;
    const totalDuration = numberField(status, "print_stats", "total_duration") ?? 0;
    const elapsedS = numberField(status, "print_stats", "print_duration");
    const active = state === "printing" || state === "paused";
    const facts = await this.#facts(filename, observedAt - totalDuration * 1000, active, options);
    const job: JobSnapshot = { file: filename.normalize("NFC") };
    if (facts.id !== undefined) job.id = facts.id;
    // Moonraker's history knows when the job started; else the job's whole duration back from now.
    job.startedAt = facts.startedAt ?? facts.began;
    const progress =
      state === "complete"
        ? 1
        : Math.min(1, Math.max(0, numberField(status, "virtual_sdcard", "progress") ?? 0));
    job.progress = progress;
    if (elapsedS !== undefined) job.elapsedS = elapsedS;
    if (state === "complete") job.remainingS = 0;
    else if (active) {
      // From the pace so far once the file has started, else from the slicer's estimate.
      if (progress > 0 && elapsedS !== undefined && elapsedS > 0)
        job.remainingS = (elapsedS * (1 - progress)) / progress;
      else if (facts.estimatedS !== undefined) job.remainingS = facts.estimatedS * (1 - progress);
    }
    return job;
  }

  /**
   * The job's facts from the file's metadata, asked again only for another file or, while a job
   * runs, one that began at another time (the same file printed again). An ended job's total
   * duration stands still, so its beginning is not compared.
   */
  async #facts(filename: string, began: number, active: boolean, options: Signal): Promise<JobFacts> {
    const known = this.#job;
    if (known?.filename === filename && (!active || Math.abs(known.began - began) <= SAME_JOB_MS))
      return known;
    const facts: JobFacts = { filename, began };
    try {
      const metadata = await this.#client.result("GET", "/server/files/metadata", metadataSchema, {
        signal: options.signal,
        operation: "file metadata",
        subject: filename,
        query: { filename },
      });
      if (metadata.job_id !== undefined) facts.id = metadata.job_id;
      if (metadata.print_start_time !== undefined) facts.startedAt = metadata.print_start_time * 1000;
      if (metadata.estimated_time !== undefined) facts.estimatedS = metadata.estimated_time;
    } catch (error) {
      // No metadata (a file removed since, a Moonraker without history): the job has no id.
      if (!(error instanceof MoonrakerCallError)) throw error;
    }
    this.#job = facts;
    return facts;
  }

  /**
   * A first snapshot, then a change whenever Klipper pushes one. While the websocket is down the
   * printer is asked over HTTP every `intervalMs` (default 2 s) and the websocket opened again; each
   * new subscription starts from a full status, so nothing missed meanwhile is lost.
   */
  async *events(options: EventsOptions = {}): AsyncIterable<PrinterEvent> {
    const { signal } = options;
    const retryMs = options.intervalMs ?? DEFAULT_EVENTS_INTERVAL_MS;
    const call = signal ? { signal } : {};
    // A function, so that the compiler does not take the signal's state as fixed between awaits.
    const aborted = () => signal?.aborted === true;
    let previous: PrinterSnapshot | undefined;
    const eventOf = (snapshot: PrinterSnapshot): PrinterEvent | undefined => {
      const before = previous;
      if (before === undefined) {
        previous = snapshot;
        return { type: "snapshot", snapshot };
      }
      const changed = changesBetween(before, snapshot);
      if (changed.length === 0) return undefined;
      previous = snapshot;
      return { type: "change", snapshot, previous: before, changed };
    };
    while (!aborted()) {
      let feed: StatusFeed | undefined;
      try {
        feed = await StatusFeed.open(this, this.#client, call);
      } catch (error) {
        if (aborted()) return;
        if (!isFerryError(error)) throw error;
      }
      if (feed) {
        this.#feeds.add(feed);
        const close = () => feed.close();
        signal?.addEventListener("abort", close, { once: true });
        try {
          for await (const { klippy, status } of feed.updates()) {
            let snapshot: PrinterSnapshot;
            try {
              snapshot = await this.build(klippy, status, call);
            } catch (error) {
              if (aborted()) return;
              // The printer went away while its job was looked up: HTTP tells the rest below.
              unreachableSnapshot(error, this.#clock());
              break;
            }
            if (aborted()) return;
            const event = eventOf(snapshot);
            if (event) yield event;
          }
        } finally {
          signal?.removeEventListener("abort", close);
          feed.close();
          this.#feeds.delete(feed);
        }
      }
      if (aborted()) return;
      // No websocket (the printer away, or the socket refused): what HTTP says of the printer.
      const snapshot = await this.snapshot(call);
      if (aborted()) return;
      const event = eventOf(snapshot);
      if (event) yield event;
      try {
        await sleep(retryMs, undefined, call);
      } catch {
        return;
      }
    }
  }

  /** print_stats.state and Klippy's state now, for print control. */
  async #state(operation: string, options: Signal): Promise<{ klippy: string; job: string }> {
    const klippy = await this.#serverInfo(options);
    if (!klippy.connected) return { klippy: "disconnected", job: "" };
    const query = await this.#client.result("POST", "/printer/objects/query", objectsQuerySchema, {
      signal: options.signal,
      operation,
      json: { objects: { webhooks: ["state"], print_stats: ["state"] } },
    });
    return {
      klippy: stringField(query.status, "webhooks", "state") ?? klippy.state,
      job: stringField(query.status, "print_stats", "state") ?? "",
    };
  }

  async #post(path: string, operation: string, options: Signal, json?: unknown): Promise<void> {
    const res = await this.#client.call("POST", path, [200], {
      signal: options.signal,
      operation,
      ...(json === undefined ? {} : { json }),
    });
    await res.body.dump();
  }

  /** Starts printing a file of the gcodes root (Klipper's SDCARD_PRINT_FILE); BUSY while a job runs. */
  async startJob(path: string, options: Signal = {}): Promise<void> {
    const at = normalizePath(path).normalize("NFC");
    const entry = await this.#storage.stat(at, options);
    if (entry.type !== "file")
      throw new FerryError("NOT_FOUND", `${this.name}: ${at} is a folder`, { subject: at });
    const { klippy, job } = await this.#state("start print", options);
    if (klippy !== "ready" || job === "printing" || job === "paused") {
      const what = klippy === "ready" ? job : `klippy ${klippy}`;
      throw new FerryError("BUSY", `${this.name}: start print ${at}: the printer is ${what}`, {
        subject: at,
      });
    }
    try {
      await this.#post("/printer/print/start", "start print", options, { filename: at });
    } catch (error) {
      // Klipper's "SD busy": a job started at the printer meanwhile.
      if (error instanceof MoonrakerCallError && /busy/i.test(error.fault.message))
        throw new FerryError("BUSY", error.message, { subject: at });
      throw error;
    }
  }

  /** Klipper answers ok to a pause of nothing; the contract wants CONFLICT: check first. */
  async pause(options: Signal = {}): Promise<void> {
    const { klippy, job } = await this.#state("pause", options);
    if (klippy !== "ready" || job !== "printing")
      throw new FerryError(
        "CONFLICT",
        `${this.name}: pause: nothing is printing (${klippy === "ready" ? job : `klippy ${klippy}`})`,
      );
    await this.#post("/printer/print/pause", "pause", options);
  }

  /** Resumes a paused job (a runout's too, once the filament is back). */
  async resume(options: Signal = {}): Promise<void> {
    const { klippy, job } = await this.#state("resume", options);
    if (klippy !== "ready" || job !== "paused")
      throw new FerryError(
        "CONFLICT",
        `${this.name}: resume: nothing is paused (${klippy === "ready" ? job : `klippy ${klippy}`})`,
      );
    await this.#post("/printer/print/resume", "resume", options);
  }

  /** Cancels the running or paused job; CONFLICT when none runs. */
  async cancel(options: Signal = {}): Promise<void> {
    const { klippy, job } = await this.#state("cancel", options);
    if (klippy !== "ready" || (job !== "printing" && job !== "paused"))
      throw new FerryError(
        "CONFLICT",
        `${this.name}: cancel: no job runs (${klippy === "ready" ? job : `klippy ${klippy}`})`,
      );
    await this.#post("/printer/print/cancel", "cancel", options);
  }

  storage(): MoonrakerStorage {
    return this.#storage;
  }

  async close(): Promise<void> {
    for (const feed of this.#feeds) feed.close();
    await this.#client.close();
  }
}

/** Opens the driver (tests pass `tuning` and a clock). */
export function openMoonrakerDriver(
  options: MoonrakerOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
  clock?: () => number,
): MoonrakerDriver {
  return new MoonrakerDriver(createClient(options, context, tuning), clock);
}

export const moonrakerDriver = definePrinterDriver<MoonrakerOptions>({
  ...moonrakerKind,
  create: (options, context) => openMoonrakerDriver(options, context),
});
