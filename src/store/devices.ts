/**
 * The last known state of each device ("online since 14:02", "offline since yesterday"), kept in
 * the store so a status command, another node or the next start sees it too.
 */
import type { Store } from "./store.ts";

export const DEVICE_STATES = ["online", "offline", "busy", "attention"] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export interface DeviceStateRecord {
  name: string;
  state: DeviceState;
  /** ms since the epoch: when the device entered this state. */
  since: number;
  detail?: string;
}

export class DeviceStates {
  readonly #store: Store;
  readonly #clock: () => number;

  constructor(store: Store, options: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
  }

  /** Records the device's state; `since` moves only when the state changes. The detail is replaced. */
  async set(name: string, state: DeviceState, detail?: string): Promise<void> {
    if (!DEVICE_STATES.includes(state)) throw new TypeError(`unknown device state "${state}"`);
    const now = this.#clock();
    await this.#store.db
      .insertInto("device_states")
      .values({ name, state, since: now, detail: detail ?? null, updated_at: now })
      .onConflict((oc) =>
        oc.column("name").doUpdateSet((eb) => ({
          // In one statement, so two nodes reporting at once cannot both move `since`.
          since: eb
            .case()
            .when("device_states.state", "=", eb.ref("excluded.state"))
            .then(eb.ref("device_states.since"))
            .else(eb.ref("excluded.since"))
            .end(),
          state: eb.ref("excluded.state"),
          detail: eb.ref("excluded.detail"),
          updated_at: eb.ref("excluded.updated_at"),
        })),
      )
      .execute();
  }

  async get(name: string): Promise<DeviceStateRecord | undefined> {
    const row = await this.#store.db
      .selectFrom("device_states")
      .select(["name", "state", "since", "detail"])
      .where("name", "=", name)
      .executeTakeFirst();
    return row && toRecord(row);
  }

  /** Every device with a recorded state, by name. */
  async all(): Promise<DeviceStateRecord[]> {
    const rows = await this.#store.db
      .selectFrom("device_states")
      .select(["name", "state", "since", "detail"])
      .orderBy("name")
      .execute();
    return rows.map(toRecord);
  }
}

function toRecord(row: {
  name: string;
  state: string;
  since: number;
  detail: string | null;
}): DeviceStateRecord {
  return {
    name: row.name,
    // Written only by set(), which checks it.
    state: row.state as DeviceState,
    since: row.since,
    ...(row.detail === null ? {} : { detail: row.detail }),
  };
}
