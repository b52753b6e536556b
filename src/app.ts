/**
 * Builds the application once, for the CLI and the server: config, store, event bus, device
 * registry, task runner, the sync engine, the print farm and its OPC UA bridge. Starting
 * and stopping happen in one place, in order: nothing is left running, every task in flight is
 * given back with its checkpoint.
 */
import { hostname } from "node:os";
import { Accounts } from "./auth/accounts.ts";
import type { FerryConfig } from "./config/index.ts";
import { systemClock, type Clock } from "./core/clock.ts";
import { EventBus } from "./core/events.ts";
import type { Logger } from "./core/logger.ts";
import { Devices } from "./devices/devices.ts";
import type { FarmEvents } from "./farm/events.ts";
import { Farm } from "./farm/farm.ts";
import { openLibrary, type Library } from "./farm/library/index.ts";
import { Notifier, notifyTaskChannels } from "./notify/notifier.ts";
import type { JobFiles } from "./farm/upload.ts";
import type { Opcua } from "./opcua/index.ts";
import { DeviceConfigs } from "./store/device-configs.ts";
import { storeDeliveries, type DeliveryRecordsOpener } from "./store/deliveries.ts";
import { DeviceStates } from "./store/devices.ts";
import { NotificationSettingsStore } from "./store/notification-settings.ts";
import { createEventHistory, type EventHistory } from "./store/event-history.ts";
import { PausedSyncs } from "./store/paused-syncs.ts";
import { openStore, type Store } from "./store/store.ts";
import type { EngineEvents } from "./sync/events.ts";
import { Engine, workersFor } from "./sync/engine/engine.ts";
import { InFlightTasks } from "./tasks/in-flight.ts";
import { TaskRunner } from "./tasks/runner.ts";
import { StoreTaskQueue } from "./tasks/store-queue.ts";

/** Every event of the application (docs/events.md). */
export type AppEvents = EngineEvents & FarmEvents;

export interface OpenedStore {
  store: Store;
  queue: StoreTaskQueue;
  deliveries: DeliveryRecordsOpener;
  deviceStates: DeviceStates;
  deviceConfigs: DeviceConfigs;
  pausedSyncs: PausedSyncs;
  /** Users, sessions and API tokens of the server. */
  accounts: Accounts;
  /** Each user's own notification settings. */
  notificationSettings: NotificationSettingsStore;
  close(): Promise<void>;
}

/** The store of a config (SQLite in data_dir, or DATABASE_URL) and its repositories. */
export async function openConfiguredStore(
  config: FerryConfig,
  logger?: Logger,
  clock: Clock = systemClock,
  databaseUrl = process.env.DATABASE_URL,
): Promise<OpenedStore> {
  const store = await openStore({
    dataDir: config.dataDir,
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(logger ? { logger } : {}),
  });
  return {
    store,
    queue: new StoreTaskQueue(store),
    deliveries: storeDeliveries(store),
    deviceStates: new DeviceStates(store),
    deviceConfigs: new DeviceConfigs(store),
    pausedSyncs: new PausedSyncs(store),
    accounts: new Accounts(store, { clock }),
    notificationSettings: new NotificationSettingsStore(store, { clock: () => clock.now() }),
    close: () => store.close(),
  };
}

/** This node's name, stable across restarts: the host and the data folder. */
export function nodeName(config: FerryConfig): string {
  return `${hostname()}:${config.dataDir}`;
}

/**
 * Workers for uploads to farm printers: a job uploads only while it counts against max_heating
 * (scheduled, uploading), so more than that would only poll the queue (with 1,000 printers, 2,000
 * claims a second).
 */
function farmUploadWorkers(config: FerryConfig): number {
  const printers = [...config.devices.values()].filter((d) => d.printer?.farm === true).length;
  return Math.min(printers, config.farm.maxHeating);
}

/** Workers for notifications sent as tasks (webhooks, e-mail): one per channel, a few at most. */
function opcuaWanted(config: FerryConfig): boolean {
  return config.opcua?.mirror !== undefined || config.opcua?.server !== undefined;
}

function notifyWorkers(config: FerryConfig): number {
  return Math.min(notifyTaskChannels(config.notify), 4);
}

export interface App {
  config: FerryConfig;
  logger: Logger;
  /** The one clock of the application (a fake one in tests). */
  clock: Clock;
  bus: EventBus<AppEvents>;
  stored: OpenedStore;
  devices: Devices;
  runner: TaskRunner;
  engine: Engine;
  /** The print farm: jobs, scheduler, printer workers. */
  farm: Farm;
  /** The farm's print files. */
  library: Library;
  /** This node's running tasks with rate and ETA. */
  inFlight: InFlightTasks;
  /** The OPC UA mirror and server, when ferry.yaml's `opcua:` asks for them. */
  opcua: Opcua | undefined;
  /** The recorded events (the server's stream, a task's history). */
  events: EventHistory;
  /** Notifications (`notify:`); absent without it. */
  notifier?: Notifier;
  /** Loads the devices added at run time, takes back this node's tasks, probes, starts every sync. */
  start(): Promise<void>;
  /** Stops triggers and workers (tasks in flight go back with their checkpoints), closes everything. */
  stop(): Promise<void>;
}

export interface AppOptions {
  logger: Logger;
  clock?: Clock;
  /** Only these syncs (default: all). */
  syncs?: readonly string[];
  workers?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  probeMs?: number;
  /** Where the farm reads jobs' files (default: the file library). */
  jobFiles?: JobFiles;
  /** The library's largest file, in bytes (default 1 GiB). */
  libraryMaxBytes?: number;
  /** This node's name (default: the host and the data folder). */
  node?: string;
  /** The store (default: DATABASE_URL, else SQLite in data_dir). */
  databaseUrl?: string;
  /** How long a farm printer's lease outlives a node that stops renewing it (default: the farm's). */
  farmLeaseMs?: number;
}

export async function createApp(config: FerryConfig, options: AppOptions): Promise<App> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const node = options.node ?? nodeName(config);
  const stored = await openConfiguredStore(config, logger, clock, options.databaseUrl);
  const bus = new EventBus<AppEvents>({ node, clock: () => clock.now() });
  // First on the bus, so that every event from here on is recorded.
  const events = await createEventHistory(stored.store, bus, { logger, clock });
  const devices = new Devices(config, logger, { bus, states: stored.deviceStates, clock: () => clock.now() });
  // The runner's `held` hook asks the engine, which is built on the runner.
  const engine: { current?: Engine } = {};
  const runner = new TaskRunner({
    queue: stored.queue,
    bus,
    logger,
    node,
    clock,
    patience: "wait",
    paused: () => ({ queues: devices.pausedQueues(), scopes: engine.current?.pausedScopes() ?? [] }),
    held: (task, label, held) => engine.current?.held(task, label, held),
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    workers:
      options.workers ??
      workersFor(
        [...config.syncs.values()].filter((s) => !options.syncs || options.syncs.includes(s.name)),
        devices,
      ) +
        farmUploadWorkers(config) +
        notifyWorkers(config),
  });
  engine.current = new Engine({
    config,
    devices,
    queue: stored.queue,
    runner,
    deliveries: stored.deliveries,
    pausedSyncs: stored.pausedSyncs,
    bus,
    logger,
    clock,
    ...(options.probeMs === undefined ? {} : { probeMs: options.probeMs }),
    ...(options.syncs === undefined ? {} : { syncs: options.syncs }),
  });
  const library = await openLibrary({
    store: stored.store,
    dataDir: config.dataDir,
    clock,
    ...(options.libraryMaxBytes === undefined ? {} : { maxBytes: options.libraryMaxBytes }),
  });
  const farm = new Farm({
    config,
    devices,
    store: stored.store,
    queue: stored.queue,
    runner,
    bus,
    logger,
    node,
    clock,
    files: options.jobFiles ?? library.jobFiles(logger),
    ...(options.farmLeaseMs === undefined ? {} : { leaseMs: options.farmLeaseMs }),
  });
  const dashboardUrl = config.notify?.dashboardUrl ?? config.server?.publicUrl;
  const notifier =
    config.notify &&
    new Notifier({
      config: config.notify,
      ...(dashboardUrl === undefined ? {} : { dashboardUrl }),
      bus,
      queue: stored.queue,
      runner,
      store: stored.store,
      settings: stored.notificationSettings,
      logger,
      clock,
    });
  // node-opcua is loaded only where ferry.yaml asks for OPC UA: it adds about 130 MB and a second
  // to every process that imports it (a `ferry sync` from cron included).
  const opcua = opcuaWanted(config)
    ? new (await import("./opcua/index.ts")).Opcua({
        config,
        bus,
        farm,
        accounts: stored.accounts,
        urlOf: (name) => {
          const options = devices.has(name) ? devices.get(name).options : undefined;
          const url =
            typeof options === "object" && options !== null ? (options as { url?: unknown }).url : undefined;
          return typeof url === "string" ? url : "";
        },
        node,
        clock,
        logger,
      })
    : undefined;
  const app: App = {
    config,
    logger,
    clock,
    bus,
    stored,
    devices,
    runner,
    engine: engine.current,
    farm,
    library,
    inFlight: new InFlightTasks(bus),
    events,
    ...(notifier ? { notifier } : {}),
    opcua,
    async start() {
      // Before anything publishes, so that no event worth a notice goes by unseen.
      notifier?.start();
      devices.announce();
      await devices.load(stored.deviceConfigs);
      await runner.start();
      await app.engine.start();
      await farm.start();
      await opcua?.start();
    },
    async stop() {
      await opcua?.stop();
      await farm.stop();
      await app.engine.stop();
      // Its last notices are queued before the runner hands its tasks back.
      await notifier?.stop();
      await runner.stop();
      bus.emit("engine.stopped", { released: runner.released });
      app.inFlight.close();
      await devices.close();
      await events.close();
      await stored.close();
    },
  };
  return app;
}
