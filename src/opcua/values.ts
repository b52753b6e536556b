/**
 * What Ferry shows of a printer in OPC UA: the layout labs already read (one folder per printer,
 * `state`, `bed/actual|target`, `nozzle/actual|target`, `job/file|progress|time_used|time_left`,
 * `url`, `camera_url`, `model`, `update_time`), made from the farm's view of the printer. Pure.
 *
 * The farm is not imported (it shares this layer, docs/adr/0014): `PrinterLike` is the part of the
 * farm's printer view this needs, and the farm's view satisfies it.
 */

/** The part of a farm printer view (src/farm/printer-views.ts) that OPC UA shows. */
export interface PrinterLike {
  name: string;
  model: string | null;
  cameraUrl: string | null;
  connection: "online" | "offline" | "auth_failed" | null;
  activity: string | null;
  temperatures: readonly { name: string; actual: number; target?: number }[];
  observedAt: number | null;
  /** The node whose worker drives it (null: none now). */
  drivenBy: string | null;
  job: JobLike | null;
  bedClear: boolean;
}

/** The part of a farm job that OPC UA shows. */
export interface JobLike {
  id: string;
  file: { name: string };
  owner: string | null;
  state: string;
  printer: string | null;
  priority: number;
  /** 0..1 */
  progress: number | null;
  remainingS: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  createdAt: number;
}

export type ValueType = "String" | "Double" | "DateTime" | "Boolean";
export type Value = string | number | Date | boolean;

/** The variables of a printer's folder: path under the folder, OPC UA type. */
export const PRINTER_VARIABLES = [
  ["state", "String"],
  ["bed/actual", "Double"],
  ["bed/target", "Double"],
  ["nozzle/actual", "Double"],
  ["nozzle/target", "Double"],
  ["job/file", "String"],
  ["job/progress", "Double"],
  ["job/time_used", "Double"],
  ["job/time_left", "Double"],
  ["url", "String"],
  ["camera_url", "String"],
  ["model", "String"],
  ["update_time", "DateTime"],
] as const satisfies readonly (readonly [string, ValueType])[];

export type PrinterPath = (typeof PRINTER_VARIABLES)[number][0];
export type PrinterValues = Record<PrinterPath, Value>;

/** The folders a printer's variables sit in, outermost first. */
export const PRINTER_FOLDERS = ["bed", "nozzle", "job"] as const;

/**
 * The printer's values. `state` is Ferry's word for it (`idle`, `printing`, `paused`, `finished`,
 * ..., or `offline` / `auth_failed`; `unknown` before the first look). Temperatures in °C, NaN
 * when unknown; progress in percent (0-100); times in seconds; no job: empty file and zeros.
 */
export function printerValues(printer: PrinterLike, url: string, now: number): PrinterValues {
  const heater = (name: string) => printer.temperatures.find((t) => t.name === name);
  const bed = heater("bed");
  const nozzle = heater("tool0");
  const job = printer.job;
  const state =
    printer.connection === null
      ? "unknown"
      : printer.connection !== "online"
        ? printer.connection
        : (printer.activity ?? "unknown");
  const used =
    job?.startedAt !== null && job?.startedAt !== undefined
      ? Math.max(0, ((job.finishedAt ?? printer.observedAt ?? now) - job.startedAt) / 1000)
      : 0;
  return {
    state,
    "bed/actual": bed?.actual ?? Number.NaN,
    "bed/target": bed ? (bed.target ?? 0) : Number.NaN,
    "nozzle/actual": nozzle?.actual ?? Number.NaN,
    "nozzle/target": nozzle ? (nozzle.target ?? 0) : Number.NaN,
    "job/file": job?.file.name ?? "",
    "job/progress": job ? Math.round((job.progress ?? 0) * 1000) / 10 : 0,
    "job/time_used": Math.round(used),
    "job/time_left": job?.remainingS ?? 0,
    url,
    camera_url: printer.cameraUrl ?? "",
    model: printer.model ?? "",
    update_time: new Date(printer.observedAt ?? now),
  };
}

/** Whether two values are the same (NaN is NaN, dates by time). */
export function sameValue(a: Value | undefined, b: Value | undefined): boolean {
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b)) return true;
  return a === b;
}
