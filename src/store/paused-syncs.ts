/** Syncs an operator paused, kept in the store so a restart does not resume them. */
import type { Store } from "./store.ts";

export interface PausedSync {
  name: string;
  pausedAt: number;
  pausedBy: string | null;
}

export class PausedSyncs {
  readonly #store: Store;
  readonly #clock: () => number;

  constructor(store: Store, options: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
  }

  async all(): Promise<PausedSync[]> {
    const rows = await this.#store.db
      .selectFrom("paused_syncs")
      .select(["name", "paused_at", "paused_by"])
      .orderBy("name")
      .execute();
    return rows.map((r) => ({ name: r.name, pausedAt: r.paused_at, pausedBy: r.paused_by }));
  }

  /** Pauses a sync; pausing a paused sync keeps who paused it first and when. */
  async pause(name: string, by?: string): Promise<PausedSync> {
    const row = { name, paused_at: this.#clock(), paused_by: by ?? null };
    await this.#store.db
      .insertInto("paused_syncs")
      .values(row)
      .onConflict((oc) => oc.column("name").doNothing())
      .execute();
    const kept = await this.#store.db
      .selectFrom("paused_syncs")
      .select(["name", "paused_at", "paused_by"])
      .where("name", "=", name)
      .executeTakeFirstOrThrow();
    return { name: kept.name, pausedAt: kept.paused_at, pausedBy: kept.paused_by };
  }

  /** Resumes a sync; false when it was not paused. */
  async resume(name: string): Promise<boolean> {
    const result = await this.#store.db
      .deleteFrom("paused_syncs")
      .where("name", "=", name)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
