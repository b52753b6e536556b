/**
 * What sync work needs, for `ferry serve` and `ferry sync` alike: config lookups, the endpoints'
 * adapters, each sync's filter, delivery records, the queue and the bus.
 */
import { join } from "node:path";
import type { Endpoint, FerryConfig, SyncConfig } from "../../config/index.ts";
import { FerryError } from "../../core/errors.ts";
import type { Bus } from "../../core/events.ts";
import type { Logger } from "../../core/logger.ts";
import { pathKey } from "../../core/paths.ts";
import { deviceOf, type Devices } from "../../devices/devices.ts";
import type { StorageAdapter } from "../../storage/adapter.ts";
import { localAdapter } from "../../storage/local/local.ts";
import type { DeliveryRecords, DeliveryRecordsOpener } from "../../store/deliveries.ts";
import type { TaskQueue } from "../../tasks/queue.ts";
import type { EngineEvents } from "../events.ts";
import { fileFilter, type FileFilter } from "../filters.ts";
import { targetQueue } from "../../devices/queues.ts";

export interface EngineContext {
  devices: Devices;
  queue: TaskQueue;
  /** What was delivered to one target of one sync (one shared instance per target). */
  records(sync: string, target: string): Promise<DeliveryRecords>;
  bus: Bus<EngineEvents>;
  logger: Logger;
  clock: () => number;
  sync(name: string): SyncConfig;
  target(sync: SyncConfig, label: string): Endpoint;
  /** The adapter of an endpoint (one per endpoint). */
  adapter(endpoint: Endpoint): StorageAdapter;
  /** The files a sync selects (its include and exclude). */
  filter(sync: SyncConfig): FileFilter;
  /** The folder of a sync's staged copies (data_dir/staging/<sync>). */
  stagingRoot(sync: SyncConfig): string;
  /** The staged copies of a sync as an adapter. */
  staging(sync: SyncConfig): StorageAdapter;
  /** The key of a target path in its delivery records. */
  recordKey(endpoint: Endpoint, path: string): string;
  /** Queue a device's work is serialized on for a path. */
  queueFor(endpoint: Endpoint, path: string): string;
  /** Attempts a new task gets (default: the queue's). */
  maxAttempts?: number;
}

export interface ContextOptions {
  config: FerryConfig;
  /** The syncs this run serves. */
  syncs: readonly SyncConfig[];
  devices: Devices;
  queue: TaskQueue;
  deliveries: DeliveryRecordsOpener;
  bus: Bus<EngineEvents>;
  logger: Logger;
  clock?: () => number;
  maxAttempts?: number;
}

export function engineContext(o: ContextOptions): EngineContext {
  const syncs = new Map(o.syncs.map((s) => [s.name, s]));
  const records = new Map<string, Promise<DeliveryRecords>>();
  const filters = new Map<string, FileFilter>();
  const staging = new Map<string, StorageAdapter>();
  const ctx: EngineContext = {
    devices: o.devices,
    queue: o.queue,
    records: (sync, target) => {
      const key = `${sync}\u0000${target}`;
      let opened = records.get(key);
      if (!opened) {
        opened = o.deliveries(sync, target);
        records.set(key, opened);
        // A failed open is not cached: the next task asks again.
        opened.catch(() => records.delete(key));
      }
      return opened;
    },
    recordKey: (endpoint, path) => pathKey(path, ctx.adapter(endpoint).capabilities.caseInsensitive),
    bus: o.bus,
    logger: o.logger,
    clock: o.clock ?? Date.now,
    sync: (name) => {
      const sync = syncs.get(name);
      if (!sync)
        throw new FerryError("NOT_FOUND", `sync "${name}" is not in ${o.config.file}`, { retryable: false });
      return sync;
    },
    target: (sync, label) => {
      const endpoint = sync.targets.find((t) => t.label === label);
      if (!endpoint)
        throw new FerryError("NOT_FOUND", `sync "${sync.name}" has no target "${label}" any more`, {
          retryable: false,
        });
      return endpoint;
    },
    adapter: (endpoint) => o.devices.endpoint(endpoint),
    filter: (sync) => {
      let filter = filters.get(sync.name);
      if (!filter) filters.set(sync.name, (filter = fileFilter(sync.include, sync.exclude)));
      return filter;
    },
    stagingRoot: (sync) => join(o.config.dataDir, "staging", encodeURIComponent(sync.name)),
    staging: (sync) => {
      let adapter = staging.get(sync.name);
      if (!adapter) {
        adapter = localAdapter.create(
          { path: ctx.stagingRoot(sync) },
          { name: `${sync.name} staging`, logger: o.logger, baseDir: o.config.baseDir },
        );
        staging.set(sync.name, adapter);
      }
      return adapter;
    },
    queueFor: (endpoint, path) => targetQueue(deviceOf(endpoint), o.devices.slots(endpoint), path),
    ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }),
  };
  return ctx;
}
