/**
 * The simulator's control API (no authentication), for tests, the demo and benchmarks:
 *
 *   GET    /_sim/state    {model, name, state, job, transfer, uploads_held, files, storage, faults}
 *   PUT    /_sim/state    {"state": "BUSY"}                       → 204
 *   POST   /_sim/print    {"path": "a/b.gcode", "duration_s": 60}  → 204
 *   POST   /_sim/faults   {"reset_after_bytes"?: n, "status"?: 500|503, "count"?: n} → 204
 *   DELETE /_sim/faults                                            → 204
 *   POST   /_sim/hold     hold uploads (they start, and take no bytes) → 204
 *   DELETE /_sim/hold     release them                                 → 204
 *   POST   /_sim/runout   the filament runs out: a print halts, ATTENTION until resumed → 204 (409 not printing)
 *   POST   /_sim/error    {"message"?: "Thermal runaway"}: ERROR, a job ends      → 204
 *   POST   /_sim/disconnect   the printer stops answering its API (connections reset) → 204
 *   DELETE /_sim/disconnect   it answers again                                    → 204
 *   PUT    /_sim/speed    {"speed": 100}: printer time runs 100 times the clock's → 204
 *
 * The same operations are methods of PrusaLinkSim for in-process use.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { readSmallBody, sendEmpty, sendJson, SimHttpError } from "./http-util.ts";
import { nodeNames, printerControl, walkFiles, type VirtualPrinter } from "../printer/index.ts";
import { modelOf, PRUSALINK_STATES, prusaState, setPrusaState } from "./prusa-printer.ts";
import { jobJson, storageJson, transferJson } from "./wire.ts";

export interface SimFileInfo {
  /** Long path relative to the printer's main storage ("calibration/first layer.gcode"). */
  path: string;
  size: number;
  /** Seconds since the epoch, as the API's m_timestamp. */
  mTimestamp: number;
}

export function simFiles(printer: VirtualPrinter): SimFileInfo[] {
  return [...walkFiles(printer.primary.root)].map((file) => ({
    path: nodeNames(file).join("/"),
    size: file.size,
    mTimestamp: file.mTimestamp,
  }));
}

/**
 * Starts a print of `path`: long or short names, relative to the main storage, or "/<storage>/…"
 * when it begins with a slash and a storage name.
 */
export function simStartPrint(printer: VirtualPrinter, path: string, durationS?: number): void {
  const parts = path.split("/").filter((part) => part !== "");
  const named = path.startsWith("/") ? printer.storage(parts[0] ?? "") : undefined;
  const storage = named ?? printer.primary;
  const names = named ? parts.slice(1) : parts;
  const node = storage.resolve(names);
  if (!node) throw new SimHttpError(404, "Not Found", `${path} does not exist on /${storage.name}`);
  printer.startPrint(storage, node, durationS);
}

export function simState(printer: VirtualPrinter, name: string): Record<string, unknown> {
  const job = printer.job;
  const transfer = printer.transfer;
  return {
    model: modelOf(printer),
    name,
    state: prusaState(printer),
    message: printer.message ?? null,
    connected: printer.connected,
    speed: printer.speed,
    temperatures: printer.temperatures(),
    job: job ? jobJson(printer, job) : null,
    transfer: transfer ? transferJson(printer, transfer) : null,
    uploads_held: printer.uploadsHeld,
    files: simFiles(printer).map((f) => ({ path: f.path, size: f.size, m_timestamp: f.mTimestamp })),
    storage: printer.storages.map(storageJson),
    faults: {
      reset_after_bytes: printer.resetAfterBytes ?? null,
      status: printer.failStatus?.status ?? null,
      count: printer.failStatus?.remaining ?? 0,
    },
  };
}

const stateBody = z.object({ state: z.enum(PRUSALINK_STATES) });
const printBody = z.object({ path: z.string().min(1), duration_s: z.number().positive().optional() });

async function parseBody<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const text = (await readSmallBody(req)).toString("utf8");
  let json: unknown;
  try {
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new SimHttpError(400, "Bad Request", "body is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new SimHttpError(400, "Bad Request", z.prettifyError(parsed.error));
  return parsed.data;
}

export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  printer: VirtualPrinter,
  name: string,
  route: string,
): Promise<void> {
  const method = req.method ?? "GET";
  const key = `${method} ${route}`;
  switch (key) {
    case "GET state":
      sendJson(res, 200, simState(printer, name));
      return;
    case "PUT state":
      setPrusaState(printer, (await parseBody(req, stateBody)).state);
      break;
    case "POST print": {
      const body = await parseBody(req, printBody);
      simStartPrint(printer, body.path, body.duration_s);
      break;
    }
    default:
      if (await printerControl(key, printer, (schema) => parseBody(req, schema))) break;
      throw new SimHttpError(404, "Not Found", `no control route ${method} /_sim/${route}`);
  }
  sendEmpty(res, 204);
}
