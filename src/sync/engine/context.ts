/** What task handlers need from the engine: config lookups, adapters, delivery records, the queue. */
import type { Endpoint, SyncConfig } from "../../config/index.ts";
import type { EventBus } from "../../core/events.ts";
import type { Logger } from "../../core/logger.ts";
import type { Devices } from "../../devices/devices.ts";
import type { StorageAdapter } from "../../storage/adapter.ts";
import type { DeliveryRecords } from "../../store/deliveries.ts";
import type { TaskQueue } from "../../tasks/queue.ts";
import type { EngineEvents } from "./events.ts";

export interface EngineContext {
  devices: Devices;
  queue: TaskQueue;
  /** What was delivered to one target of one sync (one shared instance per target). */
  records(sync: string, target: string): Promise<DeliveryRecords>;
  bus: EventBus<EngineEvents>;
  logger: Logger;
  clock: () => number;
  sync(name: string): SyncConfig;
  target(sync: SyncConfig, label: string): Endpoint;
  /** The adapter of an endpoint (cached). */
  adapter(endpoint: Endpoint): StorageAdapter;
  /** The folder of a sync's staged copies (data_dir/staging/<sync>). */
  stagingRoot(sync: SyncConfig): string;
  /** The staged copies of a sync as an adapter. */
  staging(sync: SyncConfig): StorageAdapter;
  /** Name the checker knows an endpoint's device by. */
  deviceOf(endpoint: Endpoint): string;
  /** The key of a target path in its delivery records. */
  recordKey(endpoint: Endpoint, path: string): string;
  /** Queue a device's work is serialized on for a path. */
  queueFor(endpoint: Endpoint, path: string): string;
}

export function deviceOf(endpoint: Endpoint): string {
  return endpoint.type === "device" ? endpoint.device : endpoint.label;
}
