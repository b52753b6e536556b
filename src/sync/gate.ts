/** The printer gate of a sync: may this printer be touched now, and which file must be left alone? */
import type { Endpoint } from "../config/index.ts";
import { pathKey } from "../core/paths.ts";
import { FARM_FOLDER, type Activity, type PrinterDriver } from "../printers/driver.ts";

/** Activities in which nothing runs on the printer, so its files may be changed (`when: idle`). */
export const QUIET_ACTIVITIES: ReadonlySet<Activity> = new Set(["idle", "finished", "stopped"]);

export interface GateResult {
  /** Set when the printer may not be touched: offline (unreachable) or not idle (skipped). */
  blocked?: { outcome: "unreachable" | "skipped"; reason: string };
  /** The device's state word. */
  state?: string;
  /** The file being printed (a path of the printer's storage), while a job runs. */
  printing?: string;
}

/** Why the printer may not be touched now, or undefined when it may. */
export async function printerGate(
  printer: PrinterDriver,
  gated: boolean,
  signal?: AbortSignal,
): Promise<GateResult> {
  const snapshot = await printer.snapshot(signal ? { signal } : {});
  if (snapshot.connection !== "online") {
    const fallback =
      snapshot.connection === "auth_failed" ? "printer refuses the credentials" : "printer is offline";
    return { blocked: { outcome: "unreachable", reason: snapshot.offlineReason ?? fallback } };
  }
  const state = snapshot.rawState ?? snapshot.activity;
  const quiet = QUIET_ACTIVITIES.has(snapshot.activity);
  const printing = quiet ? undefined : snapshot.job?.file;
  if (gated && !quiet) return { blocked: { outcome: "skipped", reason: `printer is ${state}` }, state };
  return printing === undefined ? { state } : { state, printing };
}

/** The printed file as a path inside the endpoint's folder, when it lies there. */
export function protectedWithin(printed: string | undefined, endpoint: Endpoint): string | undefined {
  if (printed === undefined || endpoint.type !== "device") return undefined;
  if (endpoint.path === "") return printed;
  const prefix = endpoint.path + "/";
  return pathKey(printed, true).startsWith(pathKey(prefix, true)) ? printed.slice(prefix.length) : undefined;
}

/**
 * The farm's folder on a farm printer, as a path of a sync's target on it (undefined: the target
 * does not reach it). The sync leaves it alone: the farm's job files are not excess.
 */
export function farmFolderWithin(endpoint: Endpoint): string | undefined {
  if (endpoint.type !== "device") return undefined;
  if (endpoint.path === "") return FARM_FOLDER;
  return undefined;
}
