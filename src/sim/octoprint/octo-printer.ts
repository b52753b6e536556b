/**
 * The OctoPrint face of the virtual printer: OctoPrint's own state (its serial link to the printer
 * and the selected file) on top of the printer's activity, mapped to OctoPrint's state words and
 * flags (octoprint/util/comm.py `getStateString`, printer/standard.py `_getStateFlags`, 1.11).
 */
import { SimHttpError } from "../http-error.ts";
import { type SimFile, type SimJob, type VirtualPrinter } from "../printer/index.ts";
import type { JobPort } from "./files-api.ts";
import type { OctoStorage } from "./tree.ts";

/** Every state word OctoPrint 1.x shows (comm.py), in the order of its states. */
export const OCTOPRINT_STATES = [
  "Offline",
  "Opening serial connection",
  "Detecting serial connection",
  "Connecting",
  "Operational",
  "Starting",
  "Printing",
  "Cancelling",
  "Pausing",
  "Paused",
  "Resuming",
  "Finishing",
  "Error",
  "Offline after error",
  "Transferring file to SD",
] as const;
export type OctoPrintState = (typeof OCTOPRINT_STATES)[number];

/** States in which OctoPrint talks to a printer (comm.py OPERATIONAL_STATES). */
const OPERATIONAL: ReadonlySet<OctoPrintState> = new Set([
  "Printing",
  "Starting",
  "Operational",
  "Paused",
  "Cancelling",
  "Pausing",
  "Resuming",
  "Finishing",
  "Transferring file to SD",
]);
/** comm.py PRINTING_STATES. */
const PRINTING: ReadonlySet<OctoPrintState> = new Set([
  "Starting",
  "Printing",
  "Cancelling",
  "Pausing",
  "Resuming",
  "Finishing",
]);
/** Transient words of a running job: the printer prints (or holds) while OctoPrint shows them. */
const JOB_WORDS: ReadonlySet<OctoPrintState> = new Set([
  "Starting",
  "Cancelling",
  "Pausing",
  "Resuming",
  "Finishing",
]);
const LINK_WORDS: ReadonlySet<OctoPrintState> = new Set([
  "Offline",
  "Opening serial connection",
  "Detecting serial connection",
  "Connecting",
  "Offline after error",
]);

/** What comm.py reports when the serial port goes away under it. */
export const SERIAL_LOST =
  "SerialException: 'device reports readiness to read but returned no data (device disconnected or multiple access on port?)' @ comm.py:_readline:4048";

export const SERIAL_PORT = "/dev/ttyACM0";
export const BAUDRATES = [250000, 230400, 115200, 57600, 38400, 19200, 9600] as const;

/** One print of a file: OctoPrint's `history` entry. */
export interface PrintRecord {
  success: boolean;
  /** Seconds since the epoch, when it ended. */
  date: number;
  /** Seconds it printed. */
  printTime: number;
}

type Link =
  { state: "operational" } | { state: "closed"; error?: string } | { state: "opening"; word: OctoPrintState };

export class OctoPrinter implements JobPort {
  readonly printer: VirtualPrinter;
  readonly storage: OctoStorage;
  #link: Link = { state: "operational" };
  #selected: SimFile | undefined;
  /** The file of the last job OctoPrint knows of (a print the control API started is one too). */
  #jobSeen: SimJob | undefined;
  #port: string | undefined = SERIAL_PORT;
  #baudrate: number | undefined = 115200;
  /** Print history per file, as OctoPrint keeps it in its metadata. */
  readonly #history = new WeakMap<SimFile, PrintRecord[]>();
  readonly #recorded = new WeakSet<SimJob>();

  constructor(printer: VirtualPrinter, storage: OctoStorage) {
    this.printer = printer;
    this.storage = storage;
    printer.onChange(() => {
      this.#record();
    });
  }

  /** A job that ended goes into its file's history (success when it finished). */
  #record(): void {
    const job = this.printer.job;
    if (!job || this.#recorded.has(job) || job.state === "printing" || job.state === "paused") return;
    this.#recorded.add(job);
    const records = this.#history.get(job.file) ?? [];
    records.push({
      success: job.state === "finished",
      date: Math.floor(this.printer.clock() / 1000),
      printTime: Math.round(this.printer.times(job).elapsedMs / 1000),
    });
    this.#history.set(job.file, records);
  }

  /** The prints of a file so far (the clock may have finished one). */
  history(file: SimFile): readonly PrintRecord[] {
    this.printer.tick();
    return this.#history.get(file) ?? [];
  }

  /** The host prompt the firmware shows (action_command_prompt), while it asks for a human. */
  prompt(): { text: string; choices: string[] } | undefined {
    return this.printer.activity === "attention"
      ? { text: "FilamentRunout T0", choices: ["Continue"] }
      : undefined;
  }

  #active(): SimJob | undefined {
    const job = this.printer.job;
    return job && (job.state === "printing" || job.state === "paused") ? job : undefined;
  }

  /** The state word OctoPrint shows now. */
  get state(): OctoPrintState {
    const link = this.#link;
    if (link.state === "closed") return link.error === undefined ? "Offline" : "Offline after error";
    if (link.state === "opening") return link.word;
    const word = this.printer.word;
    if (word !== undefined && (OCTOPRINT_STATES as readonly string[]).includes(word))
      return word as OctoPrintState;
    switch (this.printer.activity) {
      case "printing":
        return "Printing";
      case "paused":
      case "attention":
        // A runout makes the firmware ask OctoPrint to pause (//action:paused).
        return "Paused";
      case "busy":
        return "Transferring file to SD";
      case "error":
        return "Error";
      default:
        return "Operational";
    }
  }

  /** OctoPrint's error string: the firmware's or the serial port's, "" when none. */
  get error(): string {
    const link = this.#link;
    if (link.state === "closed") return link.error ?? "";
    if (this.state === "Error") return this.printer.message ?? "Printer error";
    return "";
  }

  flags(): Record<string, boolean> {
    const state = this.state;
    const operational = OPERATIONAL.has(state);
    const printing = PRINTING.has(state);
    const paused = state === "Paused";
    const busy = printing || paused;
    return {
      operational,
      printing,
      cancelling: state === "Cancelling",
      pausing: state === "Pausing",
      resuming: state === "Resuming",
      finishing: state === "Finishing",
      closedOrError: state === "Error" || state === "Offline" || state === "Offline after error",
      error: state === "Error" || state === "Offline after error",
      paused,
      ready: operational && !busy && state !== "Transferring file to SD",
      sdReady: false,
    };
  }

  // ---- JobPort ----

  operational(): boolean {
    return OPERATIONAL.has(this.state);
  }

  /** Printing or paused (`is_printing() or is_paused()`). */
  busy(): boolean {
    const state = this.state;
    return PRINTING.has(state) || state === "Paused";
  }

  selected(): SimFile | undefined {
    const job = this.printer.job;
    if (job && job !== this.#jobSeen) {
      // A print OctoPrint did not start (the control API's) is its job all the same.
      this.#jobSeen = job;
      this.#selected = job.file;
    }
    return this.#selected;
  }

  select(file: SimFile, print: boolean): void {
    this.#selected = file;
    if (print) this.start();
  }

  unselect(): void {
    this.#selected = undefined;
  }

  /** Starts the selected file; nothing happens without one (as `start_print` does). */
  start(): void {
    const file = this.selected();
    if (!file || !this.operational() || this.busy()) return;
    this.#jobSeen = this.printer.startPrint(this.storage.sim, file);
  }

  /** Cancels the running job and starts the selected file again (the `restart` command). */
  restart(): void {
    if (this.#active()) this.printer.cancel();
    this.start();
  }

  // ---- the serial link ----

  connection(): { state: string; port: string | null; baudrate: number | null } {
    const open = this.#link.state !== "closed";
    return {
      // OctoPrint names a closed connection "Closed" here and "Offline" everywhere else.
      state: this.#link.state === "closed" && this.#link.error === undefined ? "Closed" : this.state,
      port: open ? (this.#port ?? null) : null,
      baudrate: open ? (this.#baudrate ?? null) : null,
    };
  }

  /** POST /api/connection connect: (re)opens the port; a print it was streaming is lost. */
  connect(port: string | undefined, baudrate: number | undefined): void {
    if (this.#active()) this.printer.cancel();
    this.#port = port === undefined || port === "AUTO" ? SERIAL_PORT : port;
    this.#baudrate = baudrate === undefined || baudrate === 0 ? 115200 : baudrate;
    this.#link = { state: "operational" };
  }

  disconnect(): void {
    if (this.#active()) this.printer.cancel();
    this.#link = { state: "closed" };
  }

  /**
   * Forces OctoPrint's state word (the control API): link words set the serial link, job words need
   * a running job, "Error" fails the printer, "Operational" makes it idle.
   */
  setState(word: OctoPrintState): void {
    if (LINK_WORDS.has(word)) {
      if (word === "Offline") this.disconnect();
      else if (word === "Offline after error") {
        if (this.#active()) this.printer.cancel();
        this.#link = { state: "closed", error: SERIAL_LOST };
      } else this.#link = { state: "opening", word };
      return;
    }
    this.#link = { state: "operational" };
    if (JOB_WORDS.has(word)) {
      if (!this.#active())
        throw new SimHttpError(409, "Conflict", `${word} needs a job: start a print first`);
      this.printer.setActivity("printing", word);
      return;
    }
    switch (word) {
      case "Operational":
        this.printer.setActivity("idle");
        return;
      case "Printing":
        this.printer.setActivity("printing");
        return;
      case "Paused":
        this.printer.setActivity("paused");
        return;
      case "Error":
        this.printer.fail("Printer halted. kill() called!");
        return;
      default:
        this.printer.setActivity("busy");
    }
  }
}
