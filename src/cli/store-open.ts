/** Opens the store and its repositories for a loaded config (SQLite in data_dir, or DATABASE_URL). */
import type { FerryConfig } from "../config/index.ts";
import { storeDeliveries, type DeliveryRecordsOpener } from "../store/deliveries.ts";
import { DeviceStates } from "../store/devices.ts";
import { openStore, type Store } from "../store/store.ts";
import { StoreTaskQueue } from "../tasks/store-queue.ts";

export interface OpenedStore {
  store: Store;
  queue: StoreTaskQueue;
  deliveries: DeliveryRecordsOpener;
  deviceStates: DeviceStates;
  close(): Promise<void>;
}

export async function openConfiguredStore(config: FerryConfig): Promise<OpenedStore> {
  const databaseUrl = process.env.DATABASE_URL;
  const store = await openStore({ dataDir: config.dataDir, ...(databaseUrl ? { databaseUrl } : {}) });
  return {
    store,
    queue: new StoreTaskQueue(store),
    deliveries: storeDeliveries(store),
    deviceStates: new DeviceStates(store),
    close: () => store.close(),
  };
}
