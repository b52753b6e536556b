/**
 * The simulator's control API (no authentication), for tests, the demo and benchmarks:
 *
 *   GET    /_sim/state    {name, klippy_state, print_stats_state, activity, message, connected, speed,
 *                          temperatures, job, uploads, uploads_held, files, faults}
 *   PUT    /_sim/state    {"state": "standby" | "busy" | "startup" | "printing" | "paused" | "complete" |
 *                          "cancelled" | "error" | "klippy_error" | "disconnected"}          → 204
 *   POST   /_sim/print    {"path": "a/b.gcode", "duration_s"?: 60}  a print started at the printer → 204
 *   POST   /_sim/faults   {"reset_after_bytes"?: n, "status"?: 500|503, "count"?: n}           → 204
 *   DELETE /_sim/faults                                                                        → 204
 *   POST   /_sim/hold     hold uploads (they start, and take no bytes); DELETE releases them   → 204
 *   POST   /_sim/runout   the filament runs out: the print pauses, the sensor reports none     → 204
 *   POST   /_sim/error    {"message"?: "..."}: Klipper shuts down, a job ends in error         → 204
 *   POST   /_sim/disconnect   the host leaves the network (connections reset); DELETE: back     → 204
 *   PUT    /_sim/speed    {"speed": 100}: printer time runs 100 times the clock's              → 204
 *
 * The same operations are methods of MoonrakerSim for in-process use.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { nodeNames, printerControl, walkFiles, type SimActivity } from "../printer/index.ts";
import { MoonrakerError } from "./errors.ts";
import type { MoonrakerFace } from "./face.ts";
import { filePath, historyJobId, printStatsState } from "./klipper.ts";
import type { UploadContext } from "./uploads.ts";

export const MOONRAKER_SIM_STATES = [
  "standby",
  "busy",
  "startup",
  "printing",
  "paused",
  "complete",
  "cancelled",
  "error",
  "klippy_error",
  "disconnected",
] as const;
export type MoonrakerSimState = (typeof MOONRAKER_SIM_STATES)[number];

export interface SimFileInfo {
  /** Path relative to the gcodes root. */
  path: string;
  size: number;
  /** Unix time, seconds. */
  modified: number;
}

export function simFiles(face: MoonrakerFace): SimFileInfo[] {
  return [...walkFiles(face.storage.root)].map((file) => ({
    path: nodeNames(file).join("/"),
    size: file.size,
    modified: file.mTimestamp,
  }));
}

/** Sets Klipper's state as the printer's own screen, a fault or a restart would. */
export function setSimState(face: MoonrakerFace, state: MoonrakerSimState): void {
  const printer = face.printer;
  const activities: Partial<Record<MoonrakerSimState, [SimActivity, string?]>> = {
    standby: ["idle"],
    busy: ["busy"],
    startup: ["busy", "startup"],
    printing: ["printing"],
    paused: ["paused"],
    complete: ["finished"],
    cancelled: ["stopped"],
    klippy_error: ["error", "klippy_error"],
  };
  if (state === "error") printer.fail("MCU 'mcu' shutdown: Timer too close");
  const target = activities[state];
  if (target) printer.setActivity(target[0], target[1]);
  // Klippy comes back in the state asked for: one notify_klippy_ready (or _shutdown), at once.
  face.klippyConnected = state !== "disconnected";
}

/** Starts a print at the printer (its screen, or a macro), of a file of the gcodes root. */
export function simStartPrint(face: MoonrakerFace, path: string, durationS?: number): void {
  const node = face.storage.resolve(path.replace(/^\/+/, "").split("/"));
  if (!node) throw new MoonrakerError(404, `${path} does not exist in gcodes`);
  face.printer.startPrint(face.storage, node, durationS);
}

export function simState(face: MoonrakerFace, uploads: UploadContext, name: string): Record<string, unknown> {
  const printer = face.printer;
  const job = printer.job;
  return {
    name,
    klippy_state: face.klippy(),
    print_stats_state: printStatsState(printer),
    activity: printer.activity,
    message: printer.message ?? null,
    connected: printer.connected,
    speed: printer.speed,
    temperatures: printer.temperatures(),
    job: job
      ? { id: historyJobId(job), file: filePath(job.file), state: job.state, ...printer.times(job) }
      : null,
    uploads: [...uploads.active].map((u) => ({ filename: u.filename, received: u.received, temp: u.temp })),
    uploads_held: printer.uploadsHeld,
    files: simFiles(face),
    faults: {
      reset_after_bytes: printer.resetAfterBytes ?? null,
      status: printer.failStatus?.status ?? null,
      count: printer.failStatus?.remaining ?? 0,
    },
  };
}

const stateBody = z.object({ state: z.enum(MOONRAKER_SIM_STATES) }).strict();
const printBody = z
  .object({ path: z.string().min(1), duration_s: z.number().positive().optional() })
  .strict();

async function parseBody<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8");
  let json: unknown;
  try {
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new MoonrakerError(400, "/_sim/: body is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new MoonrakerError(400, `/_sim/: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  face: MoonrakerFace,
  uploads: UploadContext,
  name: string,
  route: string,
): Promise<void> {
  const printer = face.printer;
  const method = req.method ?? "GET";
  switch (`${method} ${route}`) {
    case "GET state": {
      const body = JSON.stringify(simState(face, uploads, name));
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    case "PUT state":
      setSimState(face, (await parseBody(req, stateBody)).state);
      break;
    case "POST print": {
      const body = await parseBody(req, printBody);
      simStartPrint(face, body.path, body.duration_s);
      break;
    }
    default:
      if (!(await printerControl(`${method} ${route}`, printer, (schema) => parseBody(req, schema))))
        throw new MoonrakerError(404, `no control route ${method} /_sim/${route}`);
  }
  res.writeHead(204, { "Content-Length": 0 });
  res.end();
}
