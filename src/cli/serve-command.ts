/** `ferry serve`: runs every sync continuously until SIGINT/SIGTERM, then stops within 10 s. */
import { createApp, type App, type AppEvents } from "../app.ts";
import {
  namesOrNone,
  nothingToDo,
  parseListen,
  type FerryConfig,
  type ServerConfig,
} from "../config/index.ts";
import { isFerryError } from "../core/errors.ts";
import type { EventBus } from "../core/events.ts";
import { formatBytes, formatDuration } from "../core/units.ts";
import { Devices } from "../devices/devices.ts";
import type { DeviceState } from "../store/devices.ts";
import { createLogger } from "./log.ts";
import { loadOrExit } from "./sync-command.ts";
import { EXIT, UsageError } from "./exit.ts";
import { acquireRunLock, LockedError, type RunLock } from "./run-lock.ts";
import { oneLine } from "./sync-output.ts";
import { FerryServer } from "../server/server.ts";
import { LIVE_ONLY } from "../store/event-history.ts";

export interface ServeOptions {
  config?: string;
  json?: boolean;
  /** `--listen HOST:PORT`: start the server there (over `server.listen`, or with its defaults). */
  listen?: string;
  /** Stops serving when it fires, as SIGINT does (the demo's `--seconds`). */
  signal?: AbortSignal;
  /** Called once every sync runs (the demo narrates from there). */
  /** Called once the app (and its server, if any) runs: the demo submits its jobs here. */
  onStarted?: (app: App) => void;
}

/** The stop deadline: transfers are checkpointed and released well before it. */
const STOP_DEADLINE_MS = 9_500;

export async function serveCommand(options: ServeOptions): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const server = serverOf(config, options.listen);
  const idle = nothingToDo(config);
  // A server has work even without syncs (devices and jobs come through its API), and so has
  // OPC UA (the farm's printers mirrored or served, operators acting through it).
  if (idle !== undefined && server === undefined && config.opcua === undefined) {
    process.stderr.write(`ferry: ${idle}\n`);
    return EXIT.ok;
  }
  const json = options.json === true;
  // One format per stream: with --json, logs are JSON lines too; otherwise words.
  const logger = createLogger(json ? "json" : "human");
  let lock: RunLock;
  try {
    lock = await acquireRunLock(config.dataDir, "serve");
  } catch (error) {
    if (!(error instanceof LockedError)) throw error;
    process.stderr.write(`ferry: ${error.message}\n`);
    return EXIT.failed;
  }
  const app = await createApp(config, { logger });
  attachServeOutput(app.bus, json);
  for (const warning of app.devices.cleartextWarnings(Devices.of(config.syncs.values())))
    logger.warn(warning);
  try {
    await app.start();
  } catch (error) {
    await app.stop().catch(() => undefined);
    await lock.release();
    if (!isFerryError(error)) throw error;
    process.stderr.write(`ferry: ${error.message}\n`);
    return EXIT.failed;
  }
  const opcua = app.opcua?.server;
  if (opcua) process.stderr.write(`ferry: OPC UA server listening on ${opcua.endpoint}\n`);
  let http: FerryServer | undefined;
  if (server !== undefined) {
    try {
      http = await FerryServer.create(app, server);
      await http.start();
    } catch (error) {
      await http?.close().catch(() => undefined);
      await app.stop();
      await lock.release();
      if (!isFerryError(error)) throw error;
      process.stderr.write(`ferry: ${error.message}\n`);
      return EXIT.failed;
    }
  }
  options.onStarted?.(app);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      options.signal?.removeEventListener("abort", stop);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener("abort", stop, { once: true });
  });
  const deadline = setTimeout(() => {
    process.stderr.write(
      "ferry: could not stop cleanly in time; unfinished tasks return to the queue when their leases expire\n",
    );
    process.exit(EXIT.failed);
  }, STOP_DEADLINE_MS);
  deadline.unref();
  // Requests in flight finish first (a few seconds at most), then the syncs stop.
  await http?.close();
  await app.stop();
  await lock.release();
  clearTimeout(deadline);
  return EXIT.ok;
}

/** The server to start: ferry.yaml's `server:`, with `--listen` over its address; undefined: none. */
function serverOf(config: FerryConfig, listen: string | undefined): ServerConfig | undefined {
  if (listen === undefined) return config.server;
  const address = parseListen(listen);
  if (typeof address === "string") throw new UsageError(`--listen: ${address}`);
  return { trustProxy: false, ...config.server, listen: address };
}

const STATE_WORDS: Record<DeviceState, (device: string, detail: string) => string> = {
  online: (device, detail) => `${device} is online${detail && detail !== "reachable" ? ` (${detail})` : ""}`,
  busy: (device, detail) => `${device} is busy (${detail}); its changes wait until it is idle`,
  offline: (device, detail) => `${device} is offline: ${oneLine(detail)}; its changes wait for it`,
  attention: (device, detail) => `${device} needs attention: ${oneLine(detail)}`,
};

function attachServeOutput(bus: EventBus<AppEvents>, json: boolean): void {
  const out = (text: string) => process.stdout.write(text + "\n");
  if (json) {
    bus.onAny((event) => {
      // Progress and temperatures are for live displays; a log of them would be mostly noise.
      if (!LIVE_ONLY.includes(event.type)) out(JSON.stringify(event));
    });
    return;
  }
  bus.on("engine.started", ({ payload: e }) =>
    out(
      e.syncs.length === 0
        ? "no syncs to run; serving the API; Ctrl-C stops"
        : `serving ${e.syncs.join(", ")} (devices: ${namesOrNone(e.devices)}); Ctrl-C stops`,
    ),
  );
  bus.on("engine.stopped", ({ payload: e }) =>
    out(`stopped; ${e.released} transfer(s) checkpointed for the next start`),
  );
  bus.on("sync.planned", ({ payload: e }) => {
    const n = e.actions.filter((a) => a.type !== "skip" && a.type !== "invalid").length;
    if (n > 0) out(`${e.sync} → ${e.target}: ${e.reason}: ${n} change(s) queued`);
    for (const a of e.actions)
      if (a.type === "invalid") out(`${e.sync} → ${e.target}: cannot send ${a.path}: ${a.reason}`);
  });
  bus.on("sync.note", ({ payload: e }) => out(`${e.sync} → ${e.target}: note: ${e.note}`));
  bus.on("sync.scan.failed", ({ payload: e }) =>
    out(`${e.sync}: ${e.reason}: scan failed: ${oneLine(e.error)}`),
  );
  bus.on("task.done", ({ payload: e }) => {
    const how = e.skipped
      ? `skipped (${e.skipped})`
      : e.bytes > 0
        ? `${formatBytes(e.bytes)} in ${formatDuration(e.ms / 1000)}`
        : "ok";
    out(`${e.sync ?? e.kind} → ${e.target ?? ""}: ${e.what}: ${how}`);
  });
  bus.on("task.failed", ({ payload: e }) => {
    const how = e.outcome === "parked" ? "waiting" : e.outcome === "retry" ? "will retry" : "gave up";
    out(`${e.sync ?? e.kind} → ${e.target ?? ""}: ${e.what}: ${how}: ${oneLine(e.error)}`);
  });
  bus.on("device.state", ({ payload: e }) => out(STATE_WORDS[e.state](e.device, e.detail)));
  bus.on("sync.source.removed", ({ payload: e }) =>
    out(`${e.sync}: moved ${e.path} (source deleted after delivery)`),
  );
  bus.on("sync.source.kept", ({ payload: e }) =>
    out(`${e.sync}: kept source ${e.path}: ${oneLine(e.reason)}`),
  );
  bus.on("job.state", ({ payload: e }) => {
    const where = e.printer === null ? "" : ` on ${e.printer}`;
    const why = e.reason === null ? "" : ` (${oneLine(e.reason)})`;
    out(`job ${e.id} ${e.file}: ${e.from === null ? "new" : e.from} → ${e.to}${where}${why}`);
  });
  bus.on("printer.waiting_bed_clear", ({ payload: e }) =>
    out(`${e.printer}: ${e.file} is done; take it off and mark the bed clear`),
  );
  // Offline and attention show as device states already.
  bus.on("printer.error", ({ payload: e }) => {
    if (e.problem === "error" || e.problem === "auth_failed")
      out(
        `${e.printer}: ${e.problem === "error" ? "printer error" : "refuses Ferry's credentials"}: ${oneLine(e.message)}`,
      );
  });
}
