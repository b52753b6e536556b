/**
 * The simulator's control API (no authentication), for tests, the demo and benchmarks:
 *
 *   GET    /_sim/state        {name, version, state, error, connection, speed, temperatures, job, uploads, uploads_held, files, faults}
 *   PUT    /_sim/state        {"state": "Pausing"}: OctoPrint's state word (see OCTOPRINT_STATES) → 204
 *   POST   /_sim/print        {"path": "a/b.gcode", "duration_s": 60}: a print started outside the API → 204
 *   POST   /_sim/faults       {"reset_after_bytes"?: n, "status"?: 500|503, "count"?: n} → 204
 *   DELETE /_sim/faults       → 204
 *   POST   /_sim/hold         hold uploads (they start, and take no bytes) → 204
 *   DELETE /_sim/hold         release them → 204
 *   POST   /_sim/runout       the filament runs out: the print halts, OctoPrint shows Paused → 204 (409 not printing)
 *   POST   /_sim/error        {"message"?: "..."}: the firmware reports an error, OctoPrint shows Error → 204
 *   POST   /_sim/disconnect   the host leaves the network: API connections reset, the print goes on → 204
 *   DELETE /_sim/disconnect   back on the network → 204
 *   PUT    /_sim/speed        {"speed": 100}: printer time runs 100 times the clock's → 204
 *
 * The same operations are methods of OctoPrintSim for in-process use.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { printerControl, walkFiles } from "../printer/index.ts";
import { abort, readBody, sendJson, sendNoContent } from "./http.ts";
import type { InflightUpload } from "./files-api.ts";
import { OCTOPRINT_STATES, type OctoPrinter } from "./octo-printer.ts";
import { nodePath } from "./tree.ts";

export interface SimFileInfo {
  /** OctoPrint's path of the file (on-disk names). */
  path: string;
  /** The name the client gave. */
  display: string;
  size: number;
  /** Seconds since the epoch. */
  date: number;
}

export interface ControlContext {
  octo: OctoPrinter;
  name: string;
  version: string;
  inflight: ReadonlySet<InflightUpload>;
}

export function simFiles(octo: OctoPrinter): SimFileInfo[] {
  return [...walkFiles(octo.storage.root)].map((file) => ({
    path: nodePath(file),
    display: octo.storage.display(file),
    size: file.size,
    date: file.mTimestamp,
  }));
}

/** Starts a print of `path` (OctoPrint's on-disk path) as the printer's own screen would. */
export function simStartPrint(octo: OctoPrinter, path: string, durationS?: number): void {
  const node = octo.storage.resolve(path.split("/").filter((part) => part !== ""));
  if (!node) throw abort(404, `${path} does not exist`);
  octo.printer.startPrint(octo.storage.sim, node, durationS);
}

export function simState(ctx: ControlContext): Record<string, unknown> {
  const { octo } = ctx;
  const printer = octo.printer;
  const job = printer.job;
  const selected = octo.selected();
  return {
    name: ctx.name,
    version: ctx.version,
    state: octo.state,
    error: octo.error,
    activity: printer.activity,
    connection: octo.connection(),
    speed: printer.speed,
    temperatures: printer.temperatures(),
    job: job ? { id: job.id, path: nodePath(job.file), state: job.state, ...printer.times(job) } : null,
    selected: selected ? nodePath(selected) : null,
    uploads: [...ctx.inflight].map((u) => ({ transferred: u.transferred })),
    uploads_held: printer.uploadsHeld,
    files: simFiles(octo),
    faults: {
      reset_after_bytes: printer.resetAfterBytes ?? null,
      status: printer.failStatus?.status ?? null,
      count: printer.failStatus?.remaining ?? 0,
    },
  };
}

const stateBody = z.object({ state: z.enum(OCTOPRINT_STATES) }).strict();
const printBody = z
  .object({ path: z.string().min(1), duration_s: z.number().positive().optional() })
  .strict();

async function parseBody<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const text = (await readBody(req)).toString("utf8");
  let json: unknown;
  try {
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    throw abort(400, "body is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw abort(400, z.prettifyError(parsed.error));
  return parsed.data;
}

export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ControlContext,
  route: string,
): Promise<void> {
  const { octo } = ctx;
  const printer = octo.printer;
  const key = `${req.method ?? "GET"} ${route}`;
  switch (key) {
    case "GET state":
      return sendJson(res, 200, simState(ctx));
    case "PUT state":
      octo.setState((await parseBody(req, stateBody)).state);
      break;
    case "POST print": {
      const body = await parseBody(req, printBody);
      simStartPrint(octo, body.path, body.duration_s);
      break;
    }
    default:
      if (await printerControl(key, printer, (schema) => parseBody(req, schema))) break;
      throw abort(404, `no control route ${req.method ?? "GET"} /_sim/${route}`);
  }
  sendNoContent(res);
}
