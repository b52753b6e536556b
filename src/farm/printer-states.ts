/**
 * What the farm keeps per printer in the store: whether its bed is known to be clear, maintenance
 * (with a reason) that keeps the scheduler away, and the lease that lets one node's worker drive
 * it. A lease is taken when free, expired or already ours, and renewed on every tick; a node that
 * dies leaves it to expire, and another node's worker takes the printer over.
 */
import type { Transaction } from "kysely";
import { prepare } from "../store/prepared.ts";
import type { Schema } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import { setBed } from "./jobs.ts";

export interface PrinterFarmState {
  printer: string;
  bedClear: boolean;
  bedChangedBy: string | null;
  bedChangedAt: number | null;
  /** Why the printer is in maintenance, or null. */
  maintenance: { reason: string; by: string | null; at: number | null } | null;
  leaseHolder: string | null;
  leaseUntil: number | null;
  /** A heater was far below its target when the node driving it last looked. */
  heating: boolean;
}

const COLUMNS = [
  "printer",
  "bed_clear",
  "bed_changed_by",
  "bed_changed_at",
  "maintenance",
  "maintenance_by",
  "maintenance_at",
  "lease_holder",
  "lease_until",
  "heating",
] as const;

type Row = {
  printer: string;
  bed_clear: number;
  bed_changed_by: string | null;
  bed_changed_at: number | null;
  maintenance: string | null;
  maintenance_by: string | null;
  maintenance_at: number | null;
  lease_holder: string | null;
  lease_until: number | null;
  heating: number;
};

function toState(row: Row): PrinterFarmState {
  return {
    printer: row.printer,
    bedClear: row.bed_clear === 1,
    bedChangedBy: row.bed_changed_by,
    bedChangedAt: row.bed_changed_at,
    maintenance:
      row.maintenance === null
        ? null
        : { reason: row.maintenance, by: row.maintenance_by, at: row.maintenance_at },
    leaseHolder: row.lease_holder,
    leaseUntil: row.lease_until,
    heating: row.heating === 1,
  };
}

/** A printer the store knows nothing of yet: bed not known to be clear, not in maintenance, free. */
export function unknownPrinter(printer: string): PrinterFarmState {
  return {
    printer,
    bedClear: false,
    bedChangedBy: null,
    bedChangedAt: null,
    maintenance: null,
    leaseHolder: null,
    leaseUntil: null,
    heating: false,
  };
}

// A worker runs these for its printer every tick: compiled once (store/prepared.ts).
const selectState = prepare((db, printer: string) =>
  db.selectFrom("printer_farm_state").select(COLUMNS).where("printer", "=", printer),
);

const takeLease = prepare((db, printer: string, holder: string, now: number, until: number) => {
  const lease = { lease_holder: holder, lease_until: until, updated_at: now };
  return db
    .insertInto("printer_farm_state")
    .values({ ...freshRow(printer, now), ...lease })
    .onConflict((oc) =>
      oc
        .column("printer")
        .doUpdateSet(lease)
        // Qualified: PostgreSQL sees the proposed row (excluded) beside the stored one here.
        .where((eb) =>
          eb.or([
            eb("printer_farm_state.lease_holder", "is", null),
            eb("printer_farm_state.lease_holder", "=", holder),
            eb("printer_farm_state.lease_until", "<", now),
          ]),
        ),
    );
});

export class PrinterStates {
  readonly #store: Store;
  readonly #clock: () => number;

  constructor(store: Store, options: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
  }

  async get(printer: string): Promise<PrinterFarmState> {
    const [row] = (await selectState(this.#store.db, printer)).rows;
    return row ? toState(row) : unknownPrinter(printer);
  }

  async all(): Promise<Map<string, PrinterFarmState>> {
    const rows = await this.#store.db.selectFrom("printer_farm_state").select(COLUMNS).execute();
    return new Map(rows.map((row) => [row.printer, toState(row)]));
  }

  async setBed(printer: string, clear: boolean, by: string): Promise<void> {
    await this.#store.db.transaction().execute((trx) => setBed(trx, printer, clear, by, this.#clock()));
  }

  /** Maintenance on (with a reason) or off (null). */
  async setMaintenance(printer: string, reason: string | null, by: string): Promise<void> {
    const now = this.#clock();
    await this.#store.db.transaction().execute(async (trx) => {
      await ensureRow(trx, printer, now);
      await trx
        .updateTable("printer_farm_state")
        .set({ maintenance: reason, maintenance_by: by, maintenance_at: now, updated_at: now })
        .where("printer", "=", printer)
        .execute();
    });
  }

  /**
   * Takes or renews the lease on a printer for `holder` until now + `leaseMs`; false while another
   * holder's lease runs. One statement decides, so two nodes asking at once cannot both win; it
   * writes the printer's first row too (every worker renews every tick: one write, not two).
   */
  async acquire(printer: string, holder: string, leaseMs: number): Promise<boolean> {
    const now = this.#clock();
    const result = await takeLease(this.#store.db, printer, holder, now, now + leaseMs);
    return Number(result.numAffectedRows) === 1;
  }

  /**
   * Records whether the printer heats, as its lease holder sees it, so every node's scheduler
   * counts it against max_heating. False when `holder` no longer holds the lease.
   */
  async setHeating(printer: string, holder: string, heating: boolean): Promise<boolean> {
    const result = await this.#store.db
      .updateTable("printer_farm_state")
      .set({ heating: heating ? 1 : 0, updated_at: this.#clock() })
      .where("printer", "=", printer)
      .where("lease_holder", "=", holder)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Gives the lease up (a node that stops), so another node need not wait for it to expire. */
  async release(printer: string, holder: string): Promise<void> {
    await this.#store.db
      .updateTable("printer_farm_state")
      .set({ lease_holder: null, lease_until: null, updated_at: this.#clock() })
      .where("printer", "=", printer)
      .where("lease_holder", "=", holder)
      .execute();
  }
}

function freshRow(printer: string, now: number) {
  return {
    printer,
    bed_clear: 0,
    bed_changed_by: null,
    bed_changed_at: null,
    maintenance: null,
    maintenance_by: null,
    maintenance_at: null,
    lease_holder: null,
    lease_until: null,
    heating: 0,
    updated_at: now,
  };
}

async function ensureRow(trx: Transaction<Schema>, printer: string, now: number): Promise<void> {
  await trx
    .insertInto("printer_farm_state")
    .values(freshRow(printer, now))
    .onConflict((oc) => oc.column("printer").doNothing())
    .execute();
}
