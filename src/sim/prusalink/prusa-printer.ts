/**
 * The PrusaLink face of the virtual printer: its models (storages and FAT names), and its state
 * words mapped to and from the printer's activities.
 */
import {
  SimStorage,
  VirtualPrinter,
  type SimActivity,
  type SimJob,
  type SimNaming,
} from "../printer/index.ts";
import { makeShortName, nameKey } from "./fat-names.ts";

export const PRUSALINK_STATES = [
  "IDLE",
  "BUSY",
  "PRINTING",
  "PAUSED",
  "FINISHED",
  "STOPPED",
  "ERROR",
  "ATTENTION",
  "READY",
] as const;
export type PrusaLinkState = (typeof PRUSALINK_STATES)[number];

export type PrinterModel = "MK4" | "MK3";

/** FAT on the MK4's USB stick: case-insensitive NFC names, each with an 8.3 alias. */
const FAT_NAMING: SimNaming = { key: nameKey, alias: makeShortName };
/** The MK3's Prusa-Link compares names as FAT does too (a simplification), without aliases. */
const LONG_NAMING: SimNaming = { key: nameKey };

export interface PrusaPrinterOptions {
  model: PrinterModel;
  capacity: number;
  clock: () => number;
  speed?: number;
}

/** MK4: one storage /usb (USB, FAT, 8.3 names). MK3: /local (long names) and a read-only /sdcard. */
export function createPrusaPrinter(options: PrusaPrinterOptions): VirtualPrinter {
  const { model, capacity, clock } = options;
  const now = Math.floor(clock() / 1000);
  const storages =
    model === "MK4"
      ? [new SimStorage({ name: "usb", capacity, naming: FAT_NAMING }, now)]
      : [
          new SimStorage(
            { name: "local", displayName: "PrusaLink gcodes", capacity, naming: LONG_NAMING },
            now,
          ),
          new SimStorage(
            { name: "sdcard", displayName: "SD Card", readOnly: true, capacity: 0, naming: LONG_NAMING },
            now,
          ),
        ];
  return new VirtualPrinter({
    storages,
    clock,
    model,
    ...(options.speed === undefined ? {} : { speed: options.speed }),
  });
}

/** The model a PrusaLink face's printer was made as. */
export const modelOf = (printer: VirtualPrinter): PrinterModel => (printer.model === "MK3" ? "MK3" : "MK4");

/** The storage's `type` in /api/v1/storage. */
export const storageType = (name: string): string => name.toUpperCase();

const WORDS: Readonly<Record<SimActivity, PrusaLinkState>> = {
  idle: "IDLE",
  busy: "BUSY",
  printing: "PRINTING",
  paused: "PAUSED",
  finished: "FINISHED",
  stopped: "STOPPED",
  error: "ERROR",
  attention: "ATTENTION",
};

/** The printer's state word now (READY while the idle printer was set READY). */
export function prusaState(printer: VirtualPrinter): PrusaLinkState {
  const activity = printer.activity;
  return activity === "idle" && printer.word === "READY" ? "READY" : WORDS[activity];
}

/**
 * Forces the state word, as the printer's own screen or a fault would. IDLE, READY and BUSY
 * stop and forget a running job; FINISHED, STOPPED and ERROR end it; ATTENTION halts its clock;
 * PAUSED and PRINTING need a job (start one with startPrint).
 */
export function setPrusaState(printer: VirtualPrinter, state: PrusaLinkState): void {
  if (state === "READY") printer.setActivity("idle", "READY");
  else printer.setActivity(state.toLowerCase() as SimActivity);
}

/** The job's `state` in /api/v1/job. */
export const jobState = (job: SimJob): string => job.state.toUpperCase();
