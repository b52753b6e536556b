/** `ferry serve`: runs every sync continuously until SIGINT/SIGTERM, then stops within 10 s. */
import { hostname } from "node:os";
import { EventBus } from "../core/events.ts";
import { formatBytes, formatDuration } from "../core/units.ts";
import { Devices } from "../devices/devices.ts";
import { Engine } from "../sync/engine/engine.ts";
import type { EngineEvents } from "../sync/engine/events.ts";
import { createLogger } from "./log.ts";
import { openConfiguredStore } from "./store-open.ts";
import { loadOrExit } from "./sync-command.ts";
import { EXIT } from "./exit.ts";
import { acquireRunLock, LockedError, type RunLock } from "./run-lock.ts";

export interface ServeOptions {
  config?: string;
  json?: boolean;
  /** Stops serving when it fires, as SIGINT does (the demo's `--seconds`). */
  signal?: AbortSignal;
  /** Called once every sync runs (the demo narrates from there). */
  onStarted?: () => void;
}

/** The stop deadline: transfers are checkpointed and released well before it. */
const STOP_DEADLINE_MS = 9_500;

export async function serveCommand(options: ServeOptions): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const logger = createLogger();
  let lock: RunLock;
  try {
    lock = await acquireRunLock(config.dataDir, "serve");
  } catch (error) {
    if (!(error instanceof LockedError)) throw error;
    process.stderr.write(`ferry: ${error.message}\n`);
    return EXIT.failed;
  }
  const opened = await openConfiguredStore(config);
  const bus = new EventBus<EngineEvents>();
  attachServeOutput(bus, options.json === true);
  const devices = new Devices(config, logger);
  const engine = new Engine({
    config,
    devices,
    queue: opened.queue,
    deliveries: opened.deliveries,
    deviceStates: opened.deviceStates,
    bus,
    logger,
    workerId: `${hostname()}:${config.dataDir}`,
  });
  await engine.start();
  options.onStarted?.();
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
  await engine.stop();
  await devices.close();
  await opened.close();
  await lock.release();
  clearTimeout(deadline);
  return EXIT.ok;
}

function attachServeOutput(bus: EventBus<EngineEvents>, json: boolean): void {
  const out = (text: string) => process.stdout.write(text + "\n");
  const names = [
    "engine.started",
    "engine.stopped",
    "scan.done",
    "scan.failed",
    "task.started",
    "task.progress",
    "task.done",
    "task.failed",
    "device.state",
    "source.removed",
  ] as const;
  if (json) {
    for (const name of names)
      bus.on(name, (event) => out(JSON.stringify({ time: new Date().toISOString(), event: name, ...event })));
    return;
  }
  bus.on("engine.started", (e) =>
    out(`serving ${e.syncs.join(", ")} (devices: ${e.devices.join(", ")}); Ctrl-C stops`),
  );
  bus.on("engine.stopped", (e) => out(`stopped; ${e.released} transfer(s) checkpointed for the next start`));
  bus.on("scan.done", (e) => {
    if (e.enqueued > 0) out(`${e.sync}: ${e.reason}: ${e.enqueued} change(s) queued`);
  });
  bus.on("scan.failed", (e) => out(`${e.sync}: ${e.reason}: scan failed: ${e.error}`));
  bus.on("task.done", (e) => {
    const how = e.skipped
      ? `skipped (${e.skipped})`
      : e.bytes > 0
        ? `${formatBytes(e.bytes)} in ${formatDuration(e.ms / 1000)}`
        : "ok";
    out(`${e.sync} → ${e.target}: ${e.what}: ${how}`);
  });
  bus.on("task.failed", (e) =>
    out(`${e.sync} → ${e.target}: ${e.what}: ${e.outcome === "parked" ? "waiting" : e.outcome}: ${e.error}`),
  );
  bus.on("device.state", (e) => out(`device ${e.device} is ${e.state}: ${e.detail}`));
  bus.on("source.removed", (e) => out(`${e.sync}: moved ${e.path} (source deleted after delivery)`));
}
