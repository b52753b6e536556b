/** `ferry sync`: one run of the named syncs (all when none are named), then exit 0 / 1 / 2. */
import {
  loadConfig,
  findConfigFile,
  ConfigError,
  namesOrNone,
  nothingToDo,
  type FerryConfig,
} from "../config/index.ts";
import { EventBus } from "../core/events.ts";
import { Devices, deviceKinds } from "../devices/devices.ts";
import type { EngineEvents, TargetReport } from "../sync/events.ts";
import { storeDeliveries } from "../store/deliveries.ts";
import { openStore } from "../store/store.ts";
import { runSyncs, SourceUnreadable } from "../sync/run.ts";
import { createLogger } from "./log.ts";
import { attachSyncOutput, jsonSummary, summaryTable, type OutputMode } from "./sync-output.ts";
import { EXIT, UsageError } from "./exit.ts";
import { acquireRunLock, LockedError, type RunLock } from "./run-lock.ts";

export interface SyncCommandOptions {
  config?: string;
  dryRun?: boolean;
  includeBusy?: boolean;
  allowEmptySource?: boolean;
  printer?: string[];
  exclude?: string[];
  json?: boolean;
}

export async function resolveConfig(file: string | undefined): Promise<FerryConfig> {
  const path = file ?? findConfigFile(process.cwd());
  if (path === undefined) throw new UsageError("no ferry.yaml, ferry.yml or ferry.json here; pass -c FILE");
  return loadConfig(path, { deviceKinds });
}

/** The config, or the exit code after printing why it could not be loaded. */
export async function loadOrExit(file: string | undefined): Promise<FerryConfig | number> {
  try {
    return await resolveConfig(file);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(error.message + "\n");
      return EXIT.usage;
    }
    throw error;
  }
}

export async function syncCommand(names: string[], options: SyncCommandOptions): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  // Nothing to do: said, and nothing created (no data folder, no store).
  const idle = nothingToDo(config);
  if (idle !== undefined) {
    process.stderr.write(`ferry: ${idle}\n`);
    return EXIT.ok;
  }
  const unknown = names.filter((name) => !config.syncs.has(name));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown sync ${unknown.map((n) => `"${n}"`).join(", ")}; ${config.file} has: ${[...config.syncs.keys()].join(", ") || "none"}`,
    );
  }
  for (const device of [...(options.printer ?? []), ...(options.exclude ?? [])]) {
    if (!config.devices.has(device))
      throw new UsageError(
        `unknown device "${device}" in -p/-x; ${config.file} has: ${namesOrNone(config.devices.keys())}`,
      );
  }
  const syncs =
    names.length > 0
      ? names.map((n) => config.syncs.get(n)).filter((s) => s !== undefined)
      : [...config.syncs.values()];

  const mode: OutputMode = options.json ? "json" : process.stdout.isTTY ? "tty" : "plain";
  // A dry run changes nothing, so it may look while another run works.
  let lock: RunLock | undefined;
  if (!options.dryRun) {
    try {
      lock = await acquireRunLock(config.dataDir, "sync");
    } catch (error) {
      if (!(error instanceof LockedError)) throw error;
      if (mode === "json") {
        process.stdout.write(
          JSON.stringify({ ...jsonSummary([]), ok: false, error: error.message }, null, 2) + "\n",
        );
      } else {
        process.stderr.write(`ferry: ${error.message}\n`);
      }
      return EXIT.failed;
    }
  }
  const bus = new EventBus<EngineEvents>();
  const detach = attachSyncOutput(bus, mode, process.stdout);
  const logger = createLogger();
  let store;
  try {
    store = await openStore({ dataDir: config.dataDir, databaseUrl: process.env.DATABASE_URL, logger });
  } catch (error) {
    detach();
    await lock?.release();
    throw error;
  }
  const devices = new Devices(config, logger);
  for (const warning of devices.cleartextWarnings(Devices.of(syncs)))
    process.stderr.write(`ferry: warning: ${warning}\n`);
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let reports: TargetReport[];
  try {
    reports = await runSyncs(syncs, devices, {
      bus,
      logger,
      signal: abort.signal,
      deliveries: storeDeliveries(store),
      ...(options.dryRun ? { dryRun: true } : {}),
      ...(options.includeBusy ? { includeBusy: true } : {}),
      ...(options.allowEmptySource ? { allowEmptySource: true } : {}),
      ...(options.printer ? { only: new Set(options.printer) } : {}),
      ...(options.exclude ? { except: new Set(options.exclude) } : {}),
    });
  } catch (error) {
    // A source that does not exist is a configuration problem: no target was touched.
    if (!(error instanceof SourceUnreadable)) throw error;
    if (mode === "json") {
      process.stdout.write(
        JSON.stringify({ ...jsonSummary([]), ok: false, error: error.message }, null, 2) + "\n",
      );
    } else {
      process.stderr.write(`ferry: ${error.message}; check the path in ${config.file}\n`);
    }
    return EXIT.usage;
  } finally {
    detach();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await devices.close();
    await store.close();
    await lock?.release();
  }
  if (mode === "json") process.stdout.write(JSON.stringify(jsonSummary(reports), null, 2) + "\n");
  else if (mode === "tty" && reports.length > 0) process.stdout.write("\n" + summaryTable(reports) + "\n");
  const failed = reports.some((r) => r.outcome === "failed" || r.outcome === "unreachable");
  return failed ? EXIT.failed : EXIT.ok;
}
