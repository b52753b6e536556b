/**
 * Devices added at run time (by the API, without a restart), kept in the store beside the ones
 * ferry.yaml names. Options are kept as given; the registry validates them with the kind's schema.
 */
import type { Store } from "./store.ts";

export interface DeviceConfigRecord {
  name: string;
  kind: string;
  /** The device's options as in ferry.yaml, less `type`. */
  options: Record<string, unknown>;
}

export class DeviceConfigs {
  readonly #store: Store;
  readonly #clock: () => number;

  constructor(store: Store, options: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
  }

  async all(): Promise<DeviceConfigRecord[]> {
    const rows = await this.#store.db
      .selectFrom("devices")
      .select(["name", "kind", "options"])
      .orderBy("name")
      .execute();
    return rows.map((row) => ({
      name: row.name,
      kind: row.kind,
      options: JSON.parse(row.options) as Record<string, unknown>,
    }));
  }

  /** Adds or replaces a device. */
  async put(record: DeviceConfigRecord): Promise<void> {
    const now = this.#clock();
    const options = JSON.stringify(record.options);
    await this.#store.db
      .insertInto("devices")
      .values({ name: record.name, kind: record.kind, options, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ kind: record.kind, options, updated_at: now }))
      .execute();
  }

  /** Removes a device; false when there was none of that name. */
  async remove(name: string): Promise<boolean> {
    const result = await this.#store.db.deleteFrom("devices").where("name", "=", name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
