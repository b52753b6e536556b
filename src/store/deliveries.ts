/**
 * What Ferry delivered to one target of one sync (docs/adr/0009-delivery-records.md), kept in the
 * store's `deliveries` table. Each record says which source file (size, time, maybe a digest) a
 * target file came from and how the target showed it right after (size, time): while the target
 * still shows it so, the copy is that source file, whatever the target's clock says.
 *
 * The records only spare transfers: losing some costs at most a file sent again.
 */
import { readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Kysely } from "kysely";
import type { Logger } from "../core/logger.ts";
import type { DeliveriesTable, Schema } from "./schema.ts";
import type { Store } from "./handle.ts";
import { prepare } from "./prepared.ts";

/** A source file as it was when Ferry sent it, and the copy as the target showed it right after. */
export interface DeliveryRecord {
  source: { size: number; modTime?: number; hash?: { kind: string; value: string } };
  target: { size?: number; modTime?: number };
}

/** The record of a source file (size, time, digest) sent and stored as `stored` shows it. */
export function deliveryRecord(
  source: { size: number; modTime?: number | undefined; hash?: { kind: string; value: string } | undefined },
  stored: { size?: number | undefined; modTime?: number | undefined },
): DeliveryRecord {
  return {
    source: {
      size: source.size,
      ...(source.modTime === undefined ? {} : { modTime: source.modTime }),
      ...(source.hash === undefined ? {} : { hash: { kind: source.hash.kind, value: source.hash.value } }),
    },
    target: {
      ...(stored.size === undefined ? {} : { size: stored.size }),
      ...(stored.modTime === undefined ? {} : { modTime: stored.modTime }),
    },
  };
}

/** The records of one target of one sync, keyed by the target path's comparison key. */
export interface DeliveryRecords {
  get(key: string): DeliveryRecord | undefined;
  set(key: string, record: DeliveryRecord): void;
  delete(key: string): void;
  keys(): IterableIterator<string>;
  /**
   * This moment in the records' history. A listing read after it cannot show what was delivered
   * before it, nor be blamed for missing what is set after it (see `setSince`).
   */
  mark(): number;
  /** Whether `key` was set after `mark` (a delivery that finished while a listing was read). */
  setSince(key: string, mark: number): boolean;
  /** Makes the changes durable. */
  save(): Promise<void>;
}

/** Where a run finds the records of each of its targets. */
export type DeliveryRecordsOpener = (sync: string, target: string) => Promise<DeliveryRecords>;

/** Records in the store's `deliveries` table. */
export function storeDeliveries(store: Store, options: { clock?: () => number } = {}): DeliveryRecordsOpener {
  const clock = options.clock ?? Date.now;
  return (sync, target) => StoreDeliveries.open(store, sync, target, clock);
}

/** Rows per statement when saving many records (well under SQLite's 32 766 parameters). */
const CHUNK = 200;

class StoreDeliveries implements DeliveryRecords {
  readonly #store: Store;
  readonly #sync: string;
  readonly #target: string;
  readonly #clock: () => number;
  readonly #records: Map<string, DeliveryRecord>;
  /** Keys set or deleted since the last save, with when they were set (deleted: absent from #records). */
  #dirty = new Map<string, number>();
  /** Counts sets; each key keeps the count of its last set (loaded records: 0). */
  #sets = 0;
  #setAt = new Map<string, number>();
  #saving: Promise<void> = Promise.resolve();
  /** The write that saves asked for now join (not started yet). */
  #next: Promise<void> | undefined;

  private constructor(
    store: Store,
    sync: string,
    target: string,
    clock: () => number,
    records: Map<string, DeliveryRecord>,
  ) {
    this.#store = store;
    this.#sync = sync;
    this.#target = target;
    this.#clock = clock;
    this.#records = records;
  }

  static async open(
    store: Store,
    sync: string,
    target: string,
    clock: () => number,
  ): Promise<StoreDeliveries> {
    const rows = await store.db
      .selectFrom("deliveries")
      .select(RECORD_COLUMNS)
      .where("sync", "=", sync)
      .where("target", "=", target)
      .execute();
    return new StoreDeliveries(store, sync, target, clock, new Map(rows.map((r) => [r.key, fromRow(r)])));
  }

  get(key: string): DeliveryRecord | undefined {
    return this.#records.get(key);
  }

  set(key: string, record: DeliveryRecord): void {
    this.#records.set(key, record);
    this.#dirty.set(key, this.#clock());
    this.#setAt.set(key, ++this.#sets);
  }

  mark(): number {
    return this.#sets;
  }

  setSince(key: string, mark: number): boolean {
    return (this.#setAt.get(key) ?? 0) > mark;
  }

  delete(key: string): void {
    if (this.#records.delete(key)) this.#dirty.set(key, this.#clock());
  }

  keys(): IterableIterator<string> {
    return this.#records.keys();
  }

  /**
   * Writes the keys changed since the last save in one transaction; saves run one after another.
   * Saves asked for before a write starts join it (it starts once the current one is done and the
   * event loop has run what is ready): deliveries finishing together cost one transaction, not one
   * each (BEGIN IMMEDIATE and COMMIT cost more than a record's upsert). Each save still resolves
   * only once its records are committed.
   */
  save(): Promise<void> {
    this.#next ??= this.#saving
      .catch(() => undefined)
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => {
        this.#next = undefined;
        return this.#write();
      });
    this.#saving = this.#next;
    return this.#next;
  }

  async #write(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const dirty = this.#dirty;
    this.#dirty = new Map();
    const upserts: DeliveriesTable[] = [];
    const deletes: string[] = [];
    for (const [key, at] of dirty) {
      const record = this.#records.get(key);
      if (record) upserts.push(toRow(this.#sync, this.#target, key, record, at));
      else deletes.push(key);
    }
    try {
      await this.#store.db.transaction().execute(async (trx) => {
        for (let i = 0; i < deletes.length; i += CHUNK) {
          await trx
            .deleteFrom("deliveries")
            .where("sync", "=", this.#sync)
            .where("target", "=", this.#target)
            .where("key", "in", deletes.slice(i, i + CHUNK))
            .execute();
        }
        for (let i = 0; i < upserts.length; i += CHUNK) await saveRows(trx, upserts.slice(i, i + CHUNK));
      });
    } catch (error) {
      // Not saved: the next save tries these keys again (unless changed since, then the newer wins).
      for (const [key, at] of dirty) if (!this.#dirty.has(key)) this.#dirty.set(key, at);
      throw error;
    }
  }
}

async function upsert(db: Kysely<Schema>, rows: DeliveriesTable[], keepExisting = false): Promise<void> {
  if (rows.length > 0) await upserting(db, rows, keepExisting).execute();
}

/** What a record holds, by its key. */
const RECORD_COLUMNS = [
  "key",
  "source_size",
  "source_mtime",
  "source_hash_kind",
  "source_hash",
  "target_size",
  "target_mtime",
] as const satisfies readonly (keyof DeliveriesTable)[];

/** Every column of a row. */
const COLUMNS = [
  "sync",
  "target",
  ...RECORD_COLUMNS,
  "delivered_at",
] as const satisfies readonly (keyof DeliveriesTable)[];

type Value = DeliveriesTable[keyof DeliveriesTable];

/** The upsert of `count` records, compiled once: a save comes with every file delivered. */
const savers = new Map<number, (db: Kysely<Schema>, ...values: Value[]) => Promise<unknown>>();

/** Saves `rows` (up to CHUNK) in one statement, compiled once for their number. */
async function saveRows(db: Kysely<Schema>, rows: DeliveriesTable[]): Promise<void> {
  let save = savers.get(rows.length);
  if (!save) {
    const count = rows.length;
    save = prepare((trx, ...values: Value[]) =>
      upserting(
        trx,
        Array.from(
          { length: count },
          (_, r) =>
            Object.fromEntries(
              COLUMNS.map((column, c) => [column, values[r * COLUMNS.length + c]]),
            ) as unknown as DeliveriesTable,
        ),
      ),
    );
    savers.set(count, save);
  }
  await save(db, ...rows.flatMap((row) => COLUMNS.map((column) => row[column])));
}

function upserting(db: Kysely<Schema>, rows: DeliveriesTable[], keepExisting = false) {
  return db
    .insertInto("deliveries")
    .values(rows)
    .onConflict((oc) => {
      const target = oc.columns(["sync", "target", "key"]);
      return keepExisting
        ? target.doNothing()
        : target.doUpdateSet((eb) => ({
            source_size: eb.ref("excluded.source_size"),
            source_mtime: eb.ref("excluded.source_mtime"),
            source_hash_kind: eb.ref("excluded.source_hash_kind"),
            source_hash: eb.ref("excluded.source_hash"),
            target_size: eb.ref("excluded.target_size"),
            target_mtime: eb.ref("excluded.target_mtime"),
            delivered_at: eb.ref("excluded.delivered_at"),
          }));
    });
}

function toRow(
  sync: string,
  target: string,
  key: string,
  record: DeliveryRecord,
  at: number,
): DeliveriesTable {
  return {
    sync,
    target,
    key,
    source_size: record.source.size,
    source_mtime: record.source.modTime ?? null,
    source_hash_kind: record.source.hash?.kind ?? null,
    source_hash: record.source.hash?.value ?? null,
    target_size: record.target.size ?? null,
    target_mtime: record.target.modTime ?? null,
    delivered_at: at,
  };
}

function fromRow(row: Omit<DeliveriesTable, "sync" | "target" | "delivered_at">): DeliveryRecord {
  const hash =
    row.source_hash_kind !== null && row.source_hash !== null
      ? { kind: row.source_hash_kind, value: row.source_hash }
      : undefined;
  return deliveryRecord(
    { size: row.source_size, modTime: row.source_mtime ?? undefined, hash },
    { size: row.target_size ?? undefined, modTime: row.target_mtime ?? undefined },
  );
}

/**
 * Delivery records of Ferry versions before the store: JSON files in `dataDir/deliveries/`, one per
 * target of a sync. They are imported into the table (rows already there are newer and win) and
 * then deleted, with temp files of a save a crash cut short. A file that is not valid JSON is
 * dropped with a warning (it would only have spared transfers); one that cannot be read is left.
 */
export async function importDeliveryFiles(store: Store, dataDir: string, logger: Logger): Promise<void> {
  const folder = join(dataDir, "deliveries");
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const rows: DeliveriesTable[] = [];
  const done: string[] = [];
  for (const name of names) {
    const path = join(folder, name);
    if (name.endsWith(".tmp")) done.push(path);
    if (!name.endsWith(".json")) continue;
    let text: string;
    let at: number;
    try {
      [text, at] = await Promise.all([readFile(path, "utf8"), stat(path).then((s) => Math.round(s.mtimeMs))]);
    } catch (error) {
      // Gone: another process opening this data folder at the same time imported it first.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        logger.warn(
          { path, err: (error as Error).message },
          "delivery records cannot be read; left as they are",
        );
      }
      continue;
    }
    const parsed = parseDeliveryFile(text);
    if (parsed === undefined) {
      logger.warn({ path }, "delivery records are not valid; dropped (files may be sent again)");
    } else {
      for (const [key, record] of parsed.records)
        rows.push(toRow(parsed.sync, parsed.target, key, record, at));
    }
    done.push(path);
  }
  if (done.length === 0) return;
  await store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += CHUNK) await upsert(trx, rows.slice(i, i + CHUNK), true);
  });
  // Only once the rows are committed: a crash before this imports the same files again, harmlessly.
  for (const path of done) await rm(path, { force: true });
  await rmdir(folder).catch(() => undefined);
  logger.info({ folder, records: rows.length }, "imported delivery records into the store");
}

/** The JSON file format of Ferry 0.1 (`{ format: 1, sync, target, records: { key: record } }`). */
function parseDeliveryFile(
  text: string,
): { sync: string; target: string; records: [string, DeliveryRecord][] } | undefined {
  let shape: unknown;
  try {
    shape = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(shape)) return undefined;
  const { format, sync, target, records } = shape;
  if (format !== 1 || typeof sync !== "string" || typeof target !== "string") return undefined;
  if (!isObject(records)) return undefined;
  const valid: [string, DeliveryRecord][] = [];
  for (const [key, record] of Object.entries(records)) {
    if (!isObject(record) || !isObject(record.source) || !isObject(record.target)) continue;
    const { source, target: stored } = record;
    if (typeof source.size !== "number") continue;
    valid.push([
      key,
      deliveryRecord(
        { size: source.size, modTime: numberOr(source.modTime) },
        { size: numberOr(stored.size), modTime: numberOr(stored.modTime) },
      ),
    ]);
  }
  return { sync, target, records: valid };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function numberOr(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}
