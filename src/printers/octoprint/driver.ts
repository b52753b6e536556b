/**
 * An OctoPrint server and the printer on its serial port as a PrinterDriver: one normalized
 * snapshot from /api/job and /api/printer, print control through /api/job and the file API, and
 * its uploads folder as a StorageAdapter sharing the same HTTP client.
 */
import { FerryError } from "../../core/errors.ts";
import { normalizePath } from "../../core/paths.ts";
import type { AdapterContext } from "../../storage/adapter.ts";
import {
  definePrinterDriver,
  pollEvents,
  unreachableSnapshot,
  type Activity,
  type EventsOptions,
  type HeaterName,
  type JobSnapshot,
  type PrinterDriver,
  type PrinterEvent,
  type PrinterSnapshot,
  type Temperature,
} from "../driver.ts";
import {
  jobSchema,
  printerSchema,
  promptSchema,
  temperatureSchema,
  type WireJob,
  type WirePrinter,
} from "./api-types.ts";
import type { OctoPrintClient } from "./client.ts";
import { createClient, OctoPrintStorage, type ClientTuning } from "./storage.ts";
import { KIND, type OctoPrintOptions, octoprintKind } from "./options.ts";

type Signal = { signal?: AbortSignal };

/**
 * OctoPrint's state words (octoprint/util/comm.py) and what they mean to Ferry. A job on its way
 * (starting, cancelling, pausing, resuming, finishing) is never quiet: its file is still in use.
 */
const ACTIVITY: Readonly<Record<string, Activity>> = {
  Operational: "idle",
  Printing: "printing",
  "Printing from SD": "printing",
  "Sending file to SD": "printing",
  Starting: "printing",
  "Starting print from SD": "printing",
  "Starting to send file to SD": "printing",
  Resuming: "printing",
  Finishing: "printing",
  Pausing: "paused",
  Paused: "paused",
  Cancelling: "busy",
  "Transferring file to SD": "busy",
  Error: "error",
  "Offline after error": "error",
  Offline: "busy",
  Closed: "busy",
  "Opening serial connection": "busy",
  "Detecting serial connection": "busy",
  "Detecting baudrate": "busy",
  Connecting: "busy",
};

/** States in which OctoPrint has no working link to its printer: the printer is offline to Ferry. */
const UNLINKED: ReadonlySet<string> = new Set([
  "Offline",
  "Closed",
  "Offline after error",
  "Opening serial connection",
  "Detecting serial connection",
  "Detecting baudrate",
  "Connecting",
]);

/** A state word Ferry does not know is busy: never quiet, so files are left alone. */
export function activityOf(state: string): Activity {
  return ACTIVITY[state] ?? "busy";
}

/** Heaters as OctoPrint names them (tool0, tool1, …, bed, chamber), with a reading. */
function temperatures(printer: WirePrinter | undefined): Temperature[] {
  const out: Temperature[] = [];
  for (const [name, value] of Object.entries(printer?.temperature ?? {})) {
    if (!/^tool\d+$/.test(name) && name !== "bed" && name !== "chamber") continue;
    const parsed = temperatureSchema.safeParse(value);
    if (!parsed.success || parsed.data.actual === null) continue;
    const { actual, target } = parsed.data;
    const heater = name as HeaterName;
    out.push(
      target === null || target === undefined ? { name: heater, actual } : { name: heater, actual, target },
    );
  }
  return out;
}

export class OctoPrintDriver implements PrinterDriver {
  readonly kind = KIND;
  readonly name: string;
  readonly capabilities = octoprintKind.capabilities;
  readonly #client: OctoPrintClient;
  readonly #storage: OctoPrintStorage;
  readonly #clock: () => number;
  /** The last job file's on-disk path and its Ferry path, so a poll does not look it up again. */
  #jobFile: { server: string; path: string | undefined } | undefined;

  constructor(client: OctoPrintClient, clock: () => number = Date.now) {
    this.#client = client;
    this.name = client.printer;
    this.#clock = clock;
    this.#storage = new OctoPrintStorage(client, { ownsClient: false });
  }

  async #job(options: Signal): Promise<WireJob> {
    return this.#client.getJson("/api/job", jobSchema, { signal: options.signal, operation: "job" });
  }

  /** /api/printer, or undefined when OctoPrint says its printer is not operational (409). */
  async #printer(options: Signal): Promise<WirePrinter | undefined> {
    const call = { signal: options.signal, operation: "printer state" };
    const res = await this.#client.send("GET", "/api/printer?exclude=sd", call);
    if (res.status === 409) {
      await res.body.dump();
      return undefined;
    }
    const context = this.#client.context("GET", "/api/printer", call);
    await this.#client.check(res, [200], context);
    return this.#client.json(res, printerSchema, context);
  }

  async snapshot(options: Signal = {}): Promise<PrinterSnapshot> {
    try {
      const [job, printer] = await Promise.all([this.#job(options), this.#printer(options)]);
      const state = printer?.state?.text ?? job.state;
      const observedAt = this.#clock();
      const error = printer?.state?.error ?? job.error ?? "";
      const progress = job.progress ?? undefined;
      const completion = progress?.completion ?? undefined;
      const server = job.job?.file?.path ?? undefined;
      const origin = job.job?.file?.origin ?? undefined;
      let activity = activityOf(state);
      // OctoPrint goes back to Operational after a print, with the finished job's progress at 100 %;
      // a cancelled one leaves no progress, and a failed last print in the file's history.
      if (activity === "idle" && completion !== undefined && completion >= 100) activity = "finished";
      else if (activity === "idle" && server && origin === "local" && completion === undefined) {
        if (await this.#lastPrintFailed(server, options)) activity = "stopped";
      }
      // The firmware asks for a human (a filament runout) through a host prompt.
      if (state === "Paused" && (await this.#prompted(options))) activity = "attention";
      const snapshot: PrinterSnapshot = {
        connection: UNLINKED.has(state) ? "offline" : "online",
        activity,
        rawState: state,
        temperatures: temperatures(printer),
        observedAt,
      };
      if (snapshot.connection === "offline") {
        snapshot.offlineReason = `OctoPrint is not connected to its printer (${state}${error === "" ? "" : `: ${error}`})`;
      }
      // A job is what runs or ran; a file that is only selected is none.
      if (server && (activity !== "idle" || completion !== undefined)) {
        const current: JobSnapshot = {};
        if (origin === "local" || origin === undefined) {
          const file = await this.#displayPath(server, options);
          if (file !== undefined) current.file = file;
        }
        if (completion !== undefined) current.progress = Math.min(1, Math.max(0, completion / 100));
        const printTime = progress?.printTime ?? undefined;
        if (printTime !== undefined) {
          current.elapsedS = printTime;
          // OctoPrint gives no start time: printing time back from now (pauses make it later).
          current.startedAt = observedAt - printTime * 1000;
        }
        const left = progress?.printTimeLeft ?? undefined;
        if (left !== undefined) current.remainingS = left;
        snapshot.job = current;
      }
      return snapshot;
    } catch (error) {
      // Unreachable, failing or refusing us: report it instead of throwing, as the contract asks.
      return unreachableSnapshot(error, this.#clock());
    }
  }

  /** Whether the last print of a file (OctoPrint's history) failed: cancelled or ended in error. */
  async #lastPrintFailed(server: string, options: Signal): Promise<boolean> {
    return (await this.#storage.entryAt(server, options))?.prints?.last?.success === false;
  }

  /** Whether the firmware shows a host prompt (absent plugin or permission: no prompt to see). */
  async #prompted(options: Signal): Promise<boolean> {
    const path = "/api/plugin/action_command_prompt";
    const call = { signal: options.signal, operation: "host prompt" };
    const res = await this.#client.send("GET", path, call);
    if (res.status !== 200) {
      await res.body.dump();
      return false;
    }
    const prompt = await this.#client.json(res, promptSchema, this.#client.context("GET", path, call));
    return prompt.text !== undefined;
  }

  async #displayPath(server: string, options: Signal): Promise<string | undefined> {
    if (this.#jobFile?.server !== server) {
      this.#jobFile = { server, path: await this.#storage.displayPath(server, options) };
    }
    return this.#jobFile.path;
  }

  events(options: EventsOptions = {}): AsyncIterable<PrinterEvent> {
    return pollEvents((opts) => this.snapshot(opts), options);
  }

  /** Selects the file and starts it (OctoPrint's `select` command with `print`). */
  async startJob(path: string, options: Signal = {}): Promise<void> {
    const at = normalizePath(path);
    const stat = await this.#storage.stat(at, options);
    if (stat.type !== "file")
      throw new FerryError("NOT_FOUND", `${this.name}: ${at} is a folder`, { subject: at });
    const server = await this.#storage.serverPathOf(at, options);
    const state = (await this.#job(options)).state;
    if (activityOf(state) !== "idle" || UNLINKED.has(state)) {
      throw new FerryError("BUSY", `${this.name}: start print ${at}: the printer is ${state}`, {
        subject: at,
      });
    }
    const res = await this.#client.call(
      "POST",
      `/api/files/local/${server.split("/").map(encodeURIComponent).join("/")}`,
      [204],
      {
        signal: options.signal,
        subject: at,
        operation: "start print",
        json: { command: "select", print: true },
      },
    );
    await res.body.dump();
  }

  /** A job command; OctoPrint's 409 (no job, not operational) is CONFLICT. */
  async #command(body: Record<string, string>, operation: string, options: Signal): Promise<void> {
    const call = { signal: options.signal, operation };
    const res = await this.#client.send("POST", "/api/job", { ...call, json: body });
    await this.#client.check(
      res,
      [204],
      this.#client.context("POST", "/api/job", call),
      res.status === 409 ? "CONFLICT" : undefined,
    );
    await res.body.dump();
  }

  /** OctoPrint pauses a paused job without complaint; the contract wants CONFLICT: check first. */
  async pause(options: Signal = {}): Promise<void> {
    const state = (await this.#job(options)).state;
    if (activityOf(state) !== "printing")
      throw new FerryError("CONFLICT", `${this.name}: pause: nothing is printing (${state})`);
    await this.#command({ command: "pause", action: "pause" }, "pause", options);
  }

  async resume(options: Signal = {}): Promise<void> {
    const state = (await this.#job(options)).state;
    if (state !== "Paused")
      throw new FerryError("CONFLICT", `${this.name}: resume: nothing is paused (${state})`);
    await this.#command({ command: "pause", action: "resume" }, "resume", options);
  }

  /** Cancels the running or paused job; CONFLICT when none runs. */
  cancel(options: Signal = {}): Promise<void> {
    return this.#command({ command: "cancel" }, "cancel", options);
  }

  storage(): OctoPrintStorage {
    return this.#storage;
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** Opens the driver (tests pass `tuning` and a clock). */
export function openOctoPrintDriver(
  options: OctoPrintOptions,
  context: AdapterContext,
  tuning: ClientTuning = {},
  clock?: () => number,
): OctoPrintDriver {
  return new OctoPrintDriver(createClient(options, context, tuning), clock);
}

export const octoprintDriver = definePrinterDriver<OctoPrintOptions>({
  ...octoprintKind,
  create: (options, context) => openOctoPrintDriver(options, context),
});
