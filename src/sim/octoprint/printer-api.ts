/**
 * OctoPrint's printer-facing API (1.11, pre-2.0.0 shapes): `/api/connection`, `/api/printer` and
 * `/api/job`, with the refusals and texts of octoprint/server/api/{connection,printer,job}.py.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readGcode, type SimFile } from "../printer/index.ts";
import { abort, isTrue, readCommand, sendJson, sendNoContent } from "./http.ts";
import { BAUDRATES, SERIAL_PORT, type OctoPrinter } from "./octo-printer.ts";
import { nodePath } from "./tree.ts";

export interface PrinterApiContext {
  octo: OctoPrinter;
  /** The API key's user, shown as the job's user. */
  user: string;
}

const PROFILE = { id: "_default", name: "Default" };

/** The G-code analysis OctoPrint would have made of a file: its estimated print time, when known. */
export function analysisOf(file: SimFile): Record<string, unknown> | undefined {
  const estimated = readGcode(file.content).estimatedS;
  return estimated === undefined ? undefined : { estimatedPrintTime: estimated };
}

function stateJson(octo: OctoPrinter): Record<string, unknown> {
  return { text: octo.state, flags: octo.flags(), error: octo.error };
}

export function connectionJson(octo: OctoPrinter): Record<string, unknown> {
  const current = octo.connection();
  return {
    current: { ...current, printerProfile: PROFILE.id },
    options: {
      ports: [SERIAL_PORT],
      baudrates: [...BAUDRATES],
      printerProfiles: [PROFILE],
      portPreference: SERIAL_PORT,
      baudratePreference: 115200,
      printerProfilePreference: PROFILE.id,
      autoconnect: true,
    },
  };
}

export async function handleConnection(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: PrinterApiContext,
): Promise<void> {
  if (req.method === "GET") return sendJson(res, 200, connectionJson(ctx.octo));
  if (req.method !== "POST") throw abort(405);
  const { command, data } = await readCommand(req, { connect: [], disconnect: [], repair: [], fake_ack: [] });
  if (command === "connect") {
    const port = data.port;
    if (port !== undefined && port !== "AUTO" && port !== SERIAL_PORT) throw abort(400, "port is invalid");
    const baudrate = data.baudrate;
    if (baudrate !== undefined && baudrate !== 0 && !(BAUDRATES as readonly unknown[]).includes(baudrate)) {
      throw abort(400, "baudrate is invalid");
    }
    const profile = data.printerProfile;
    if (profile !== undefined && profile !== PROFILE.id) throw abort(400, "printerProfile is invalid");
    ctx.octo.connect(
      typeof port === "string" ? port : undefined,
      typeof baudrate === "number" ? baudrate : undefined,
    );
  } else if (command === "disconnect") {
    ctx.octo.disconnect();
  }
  return sendNoContent(res);
}

/** GET /api/printer: temperatures, SD state and printer state; 409 when not operational. */
export function handlePrinter(req: IncomingMessage, res: ServerResponse, ctx: PrinterApiContext): void {
  if (req.method !== "GET") throw abort(405);
  const { octo } = ctx;
  if (!octo.operational()) throw abort(409, "Printer is not operational");
  const query = new URL(req.url ?? "/", "http://sim").searchParams;
  const excludes = new Set((query.get("exclude") ?? "").split(",").map((x) => x.trim()));
  const result: Record<string, unknown> = {};
  if (!excludes.has("temperature")) {
    const temps = octo.printer.temperatures();
    const temperature: Record<string, unknown> = {};
    for (const t of temps) temperature[t.name] = { actual: t.actual, target: t.target, offset: 0 };
    // The simulator keeps no past readings: the history is the reading of now.
    if (isTrue(query.get("history")) && query.get("limit") !== "0") {
      const point: Record<string, unknown> = { time: Math.floor(octo.printer.clock() / 1000) };
      for (const t of temps) point[t.name] = { actual: t.actual, target: t.target };
      temperature.history = [point];
    }
    result.temperature = temperature;
  }
  if (!excludes.has("sd")) result.sd = { ready: false };
  if (!excludes.has("state")) result.state = stateJson(octo);
  sendJson(res, 200, result);
}

function jobJson(ctx: PrinterApiContext): Record<string, unknown> {
  const { octo } = ctx;
  const file = octo.selected();
  const job = octo.printer.job;
  const estimate = file && analysisOf(file)?.estimatedPrintTime;
  const jobInfo = {
    file: file
      ? {
          name: file.name,
          path: nodePath(file),
          display: octo.storage.display(file),
          origin: "local",
          size: file.size,
          date: file.mTimestamp,
        }
      : { name: null, path: null, display: null, origin: null, size: null, date: null },
    estimatedPrintTime: estimate ?? null,
    averagePrintTime: null,
    lastPrintTime: null,
    filament: null,
    user: file ? ctx.user : null,
  };
  let progress: Record<string, unknown> = {
    completion: null,
    filepos: null,
    printTime: null,
    printTimeLeft: null,
    printTimeLeftOrigin: null,
  };
  if (file && job?.file === file && job.state !== "stopped") {
    const times = octo.printer.times(job);
    const done = job.state === "finished";
    progress = {
      completion: done ? 100 : times.progress * 100,
      filepos: done ? file.size : Math.floor(times.progress * file.size),
      printTime: Math.floor(times.elapsedMs / 1000),
      printTimeLeft: done ? 0 : Math.round(times.remainingMs / 1000),
      printTimeLeftOrigin: done ? null : estimate === undefined ? "linear" : "analysis",
    };
  }
  const answer: Record<string, unknown> = { job: jobInfo, progress, state: octo.state };
  if (octo.error !== "") answer.error = octo.error;
  return answer;
}

export async function handleJob(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: PrinterApiContext,
): Promise<void> {
  if (req.method === "GET") return sendJson(res, 200, jobJson(ctx));
  if (req.method !== "POST") throw abort(405);
  const { octo } = ctx;
  if (!octo.operational()) {
    req.resume();
    throw abort(409, "Printer is not operational");
  }
  const { command, data } = await readCommand(req, { start: [], restart: [], pause: [], cancel: [] });
  const active = octo.busy();
  switch (command) {
    case "start":
      if (active) throw abort(409, "Printer already has an active print job, did you mean 'restart'?");
      octo.start();
      break;
    case "restart":
      if (octo.state !== "Paused")
        throw abort(409, "Printer does not have an active print job or is not paused");
      octo.restart();
      break;
    case "pause": {
      if (!active) {
        throw abort(409, "Printer is neither printing nor paused, 'pause' command cannot be performed");
      }
      const action = data.action ?? "toggle";
      const paused = octo.state === "Paused";
      if (action === "pause" || (action === "toggle" && !paused)) {
        if (!paused) octo.printer.pause();
      } else if (action === "resume" || action === "toggle") {
        if (paused) octo.printer.resume();
      } else {
        throw abort(400, "Unknown action");
      }
      break;
    }
    default:
      if (!active) {
        throw abort(409, "Printer is neither printing nor paused, 'cancel' command cannot be performed");
      }
      octo.printer.cancel();
  }
  return sendNoContent(res);
}

/**
 * The bundled Action Command Prompt plugin's API: the prompt the firmware shows (`{}` when none),
 * and `select` of a choice (the firmware goes on, as M876 tells it).
 */
export async function handlePrompt(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: PrinterApiContext,
): Promise<void> {
  const prompt = ctx.octo.prompt();
  if (req.method === "GET") return sendJson(res, 200, prompt ?? {});
  if (req.method !== "POST") throw abort(405);
  await readCommand(req, { select: ["choice"] });
  if (!prompt) throw abort(409, "No active prompt");
  ctx.octo.printer.resume();
  return sendNoContent(res);
}
