/**
 * The Klipper side of the Moonraker face: the virtual printer's activities as Klippy's state
 * (`webhooks`) and the job's (`print_stats`), and the printer objects a client queries or
 * subscribes to, built from the virtual printer as Klipper reports them (docs: printer_objects.md).
 *
 *   activity   webhooks.state   print_stats.state   notes
 *   idle       ready            standby             (or the last job's complete/cancelled/error)
 *   busy       ready            standby             idle_timeout "Printing": commands run (homing, heating)
 *   printing   ready            printing
 *   paused     ready            paused
 *   attention  ready            paused              the runout sensor reports no filament
 *   finished   ready            complete
 *   stopped    ready            cancelled
 *   error      shutdown         error (with a job)  webhooks.state_message says why
 *
 * The words "startup" (activity busy) and "klippy_error" (activity error) put Klippy itself in its
 * startup or error state; "disconnected" is Klippy not connected to Moonraker (see MoonrakerPrinter).
 */
import { createHash } from "node:crypto";
import {
  SimStorage,
  VirtualPrinter,
  nodeNames,
  type SimFile,
  type SimJob,
  type SimNaming,
} from "../printer/index.ts";

/** ext4: names are bytes, compared as they are (no NFC, no case folding). */
const LINUX_NAMING: SimNaming = { key: (name) => name };

export const GCODES_PATH = "/home/pi/printer_data/gcodes";

export interface MoonrakerPrinterOptions {
  capacity: number;
  clock: () => number;
  speed?: number;
  /** A second extruder (`extruder1`). */
  extruders?: 1 | 2;
  /** A heated chamber (`heater_generic chamber`). */
  chamber?: boolean;
}

export function createMoonrakerPrinter(options: MoonrakerPrinterOptions): VirtualPrinter {
  const now = Math.floor(options.clock() / 1000);
  return new VirtualPrinter({
    storages: [new SimStorage({ name: "gcodes", capacity: options.capacity, naming: LINUX_NAMING }, now)],
    clock: options.clock,
    model: "Klipper",
    ...(options.speed === undefined ? {} : { speed: options.speed }),
    ...(options.chamber === true ? { chamber: true } : {}),
  });
}

/** Klippy's state as Moonraker reports it (server.info, printer.info, webhooks). */
export type KlippyState = "ready" | "startup" | "shutdown" | "error" | "disconnected";

export function klippyState(printer: VirtualPrinter, klippyConnected: boolean): KlippyState {
  if (!klippyConnected) return "disconnected";
  const activity = printer.activity;
  if (activity === "busy" && printer.word === "startup") return "startup";
  if (activity === "error") return printer.word === "klippy_error" ? "error" : "shutdown";
  return "ready";
}

export function klippyMessage(printer: VirtualPrinter, state: KlippyState): string {
  switch (state) {
    case "ready":
      return "Printer is ready";
    case "startup":
      return "Printer is not ready\nThe klippy host software is attempting to connect.";
    case "shutdown":
      return `${printer.message ?? "Shutdown"}\nOnce the underlying issue is corrected, use the "FIRMWARE_RESTART" command to reset the firmware, reload the config, and restart the host software.\nPrinter is shutdown`;
    case "error":
      return printer.message ?? "Error loading config";
    case "disconnected":
      return "Klippy Disconnected";
  }
}

/** print_stats.state of the current or last job. */
export function printStatsState(printer: VirtualPrinter): string {
  const job = printer.job;
  const activity = printer.activity;
  if (activity === "attention" || job?.state === "paused") return "paused";
  switch (job?.state) {
    case "printing":
      return "printing";
    case "finished":
      return "complete";
    case "stopped":
      return "cancelled";
    case "error":
      return "error";
    default:
      return "standby";
  }
}

/** The history job id Moonraker gives the virtual printer's job n ("0000BF"). */
export const historyJobId = (job: SimJob): string => job.id.toString(16).toUpperCase().padStart(6, "0");

export const filePath = (file: SimFile): string => nodeNames(file).join("/");

/** The objects a client may query (`printer.objects.list`). */
export function objectNames(options: { extruders: 1 | 2; chamber: boolean }): string[] {
  return [
    "webhooks",
    "configfile",
    "mcu",
    "gcode_move",
    "heaters",
    ...(options.chamber ? ["heater_generic chamber"] : []),
    "filament_switch_sensor runout_sensor",
    "pause_resume",
    "print_stats",
    "virtual_sdcard",
    "display_status",
    "idle_timeout",
    "heater_bed",
    "toolhead",
    "extruder",
    ...(options.extruders === 2 ? ["extruder1"] : []),
  ];
}

type Fields = Record<string, unknown>;

function heaterFields(actual: number, target: number): Fields {
  return { temperature: actual, target, power: target > actual ? 1 : target > 0 ? 0.35 : 0 };
}

/** Every field of every object, now (a subscription sends the ones that changed). */
export function allObjects(
  printer: VirtualPrinter,
  options: { extruders: 1 | 2; chamber: boolean; klippyConnected: boolean },
): Record<string, Fields> {
  const state = klippyState(printer, options.klippyConnected);
  const job = printer.job;
  const times = job ? printer.times(job) : undefined;
  const temps = new Map(printer.temperatures().map((t) => [t.name, t]));
  const tool = temps.get("tool0") ?? { actual: 24, target: 0 };
  const bed = temps.get("bed") ?? { actual: 24, target: 0 };
  const activity = printer.activity;
  const file = job?.file;
  const progress = times ? Math.round(times.progress * 10_000) / 10_000 : 0;
  const elapsedS = times ? times.elapsedMs / 1000 : 0;
  const totalS = job ? (printer.clock() - job.startedAt) / 1000 : 0;
  const ended = job !== undefined && job.state !== "printing" && job.state !== "paused";
  const objects: Record<string, Fields> = {
    webhooks: { state, state_message: klippyMessage(printer, state) },
    print_stats: {
      filename: file ? filePath(file) : "",
      total_duration: ended ? elapsedS : totalS,
      print_duration: elapsedS,
      filament_used: Math.round(progress * 4_800 * 100) / 100,
      state: printStatsState(printer),
      message: job?.state === "error" ? (printer.message ?? "") : "",
      info: { total_layer: null, current_layer: null },
    },
    virtual_sdcard: {
      file_path: file ? `${GCODES_PATH}/${filePath(file)}` : null,
      progress,
      is_active: job?.state === "printing" && activity === "printing",
      file_position: file ? Math.floor(progress * file.size) : 0,
      file_size: file?.size ?? 0,
    },
    display_status: { message: "", progress },
    idle_timeout: {
      state:
        activity === "printing" || activity === "busy" ? "Printing" : activity === "idle" ? "Idle" : "Ready",
      printing_time: activity === "printing" ? elapsedS : 0,
    },
    pause_resume: { is_paused: activity === "paused" || activity === "attention" },
    "filament_switch_sensor runout_sensor": {
      filament_detected: activity !== "attention",
      enabled: true,
    },
    extruder: {
      ...heaterFields(tool.actual, tool.target),
      can_extrude: tool.actual >= 170,
      pressure_advance: 0.04,
      smooth_time: 0.04,
      motion_queue: null,
    },
    heater_bed: heaterFields(bed.actual, bed.target),
    heaters: {
      available_heaters: ["heater_bed", "extruder", ...(options.extruders === 2 ? ["extruder1"] : [])].concat(
        options.chamber ? ["heater_generic chamber"] : [],
      ),
      available_sensors: ["heater_bed", "extruder", ...(options.extruders === 2 ? ["extruder1"] : [])].concat(
        options.chamber ? ["heater_generic chamber"] : [],
      ),
    },
    toolhead: {
      homed_axes: activity === "printing" || activity === "paused" ? "xyz" : "",
      axis_minimum: [0, 0, 0, 0],
      axis_maximum: [250, 210, 220, 0],
      print_time: elapsedS,
      stalls: 0,
      estimated_print_time: elapsedS,
      extruder: "extruder",
      position: [0, 0, 0, 0],
      max_velocity: 300,
      max_accel: 3000,
      minimum_cruise_ratio: 0.5,
      square_corner_velocity: 5,
    },
    gcode_move: {
      speed_factor: 1,
      speed: 1500,
      extrude_factor: 1,
      absolute_coordinates: true,
      absolute_extrude: true,
      homing_origin: [0, 0, 0, 0],
      position: [0, 0, 0, 0],
      gcode_position: [0, 0, 0, 0],
    },
    configfile: { config: {}, settings: {}, save_config_pending: false },
    mcu: { mcu_version: "v0.12.0-sim", mcu_build_versions: "", mcu_constants: {}, last_stats: {} },
  };
  if (options.extruders === 2) {
    objects.extruder1 = {
      ...heaterFields(24, 0),
      can_extrude: false,
      pressure_advance: 0,
      smooth_time: 0.04,
      motion_queue: null,
    };
  }
  const chamber = temps.get("chamber");
  if (options.chamber && chamber)
    objects["heater_generic chamber"] = heaterFields(chamber.actual, chamber.target);
  return objects;
}

/** The requested fields of the requested objects; unknown objects and fields are left out. */
export function pick(
  all: Record<string, Fields>,
  request: Record<string, readonly string[] | null>,
): Record<string, Fields> {
  const out: Record<string, Fields> = {};
  for (const [name, fields] of Object.entries(request)) {
    const object = all[name];
    if (!object) continue;
    out[name] =
      fields === null
        ? { ...object }
        : Object.fromEntries(fields.filter((f) => f in object).map((f) => [f, object[f]]));
  }
  return out;
}

/** The fields of `next` that differ from `previous` (objects compared as JSON). */
export function changedFields(
  previous: Record<string, Fields>,
  next: Record<string, Fields>,
): Record<string, Fields> {
  const out: Record<string, Fields> = {};
  for (const [name, fields] of Object.entries(next)) {
    const before = previous[name] ?? {};
    const diff: Fields = {};
    for (const [field, value] of Object.entries(fields)) {
      if (JSON.stringify(before[field]) !== JSON.stringify(value)) diff[field] = value;
    }
    if (Object.keys(diff).length > 0) out[name] = diff;
  }
  return out;
}

/** A metadata uuid that stays the same for one file's content. */
export function metadataUuid(file: SimFile): string {
  const hex = createHash("sha1")
    .update(`${filePath(file)}:${file.size}:${file.mTimestamp}`)
    .digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
