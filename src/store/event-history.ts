/**
 * The bounded history of published events behind the server's event stream (docs/events.md):
 * every event of the bus is recorded in the `events` table, where the database gives it an
 * increasing integer id (the stream's position, by which a client resumes), except high-rate live
 * events (`task.progress`, `printer.temperatures`), which are passed on without an id.
 *
 * Events are written in batches, one transaction each, at most `flushMs` after they were published
 * (at once when `batchSize` are waiting), so a thousand events a second cost about twenty small
 * transactions. Subscribers get each batch after its transaction committed, in the bus's order,
 * each recorded event with its id. The table keeps the newest `keep` events and none older than
 * `keepDays`; pruning runs at start and after enough writes or time, and remembers the newest id
 * it removed, so a client that resumes from before it learns that it missed events.
 *
 * On PostgreSQL every batch takes a transaction-scoped advisory lock before it draws ids, so ids
 * are committed in the order they were drawn across all nodes sharing the database: a reader that
 * sees id n has seen every id below it.
 */
import { sql, type Kysely } from "kysely";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import type { EventBus, EventMap } from "../core/events.ts";
import { silentLogger, type Logger } from "../core/logger.ts";
import type { Store } from "./handle.ts";
import type { Schema } from "./schema.ts";

/** High-rate events of use only live: streamed without an id, never recorded. */
export const LIVE_ONLY: readonly string[] = ["task.progress", "printer.temperatures"];

export interface EventHistoryOptions {
  /** Keep the newest this many events (default 10,000). */
  keep?: number;
  /** Keep no event older than this (default 7 days). */
  keepDays?: number;
  /** Types passed on live but never recorded (default: LIVE_ONLY). */
  liveOnly?: readonly string[];
  /** Longest wait before a published event is written (default 50 ms). */
  flushMs?: number;
  /** Events per transaction at most; this many waiting are written at once (default 500). */
  batchSize?: number;
  /** Events waiting for a store that cannot take them, at most; beyond it the oldest are lost (default 10,000). */
  maxPending?: number;
  /** Prune at least this often while events come (default 60 s). */
  pruneMs?: number;
  /** Wait after a failed write before the next try (default 1 s). */
  retryMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** An event as the stream carries it: `data` is the envelope's JSON, built once for every reader. */
export interface RecordedEvent {
  /** The store's id; undefined for a live-only event. */
  id: number | undefined;
  /** The envelope's own id. */
  eventId: string;
  at: number;
  node: string;
  type: string;
  /** The device it concerns (payload `device`, or the device of payload `target`), for filters. */
  device: string | null;
  /** The task it is about (payload `id` of a `task.*` event): a task's history. */
  task: string | null;
  /** `{"id","at","node","type","payload"}`, exactly the envelope as published. */
  data: string;
}

export interface HistoryFilter {
  /** Type names; `prefix.*` takes every type under the prefix. None: every type. */
  types?: readonly string[];
  /** Device names. None: events of any device and of none. */
  devices?: readonly string[];
  /** Only events this node published. */
  node?: string;
  /** Only events about this task. */
  task?: string;
}

export interface HistoryHorizon {
  /** The newest id pruned (0: none yet): a client that has seen less has missed events. */
  prunedThrough: number;
  /** The newest id recorded (or pruned); a higher id is not one of this history's. */
  newest: number;
}

export type BatchListener = (batch: readonly RecordedEvent[]) => void;

export interface EventHistory {
  /** The node whose bus this history records. */
  readonly node: string;
  /** Batches after they are written, in order; returns the unsubscribe function. */
  subscribe(listener: BatchListener): () => void;
  /** Recorded events after `afterId` that pass the filter, oldest first, at most `limit`. */
  since(afterId: number, filter: HistoryFilter, limit: number): Promise<RecordedEvent[]>;
  horizon(): Promise<HistoryHorizon>;
  /** Writes what is waiting now (and whatever comes meanwhile). */
  flush(): Promise<void>;
  /** Removes what the bounds no longer keep; returns how many rows went. */
  prune(): Promise<number>;
  /** Events lost because the store could not take them in time. */
  readonly lost: number;
  /** Stops listening to the bus and writes what is waiting. */
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
/** Key of the advisory lock that orders event ids across nodes (any constant unique to Ferry). */
const PG_EVENTS_LOCK = 0x6665_7273; // "fers"
/** Rows per insert statement: a few fixed sizes, so few statement texts are prepared and kept. */
const INSERT_SIZES = [100, 10, 1] as const;

/** Starts recording `bus` into the store; prunes what the bounds no longer keep first. */
export async function createEventHistory<Events extends EventMap>(
  store: Store,
  bus: EventBus<Events>,
  options: EventHistoryOptions = {},
): Promise<EventHistory> {
  const history = new StoreEventHistory(store, bus.node, options);
  await history.prune();
  history.listen(bus.onAny((envelope) => history.add(envelope as unknown as AnyEnvelope)));
  return history;
}

interface AnyEnvelope {
  id: string;
  at: number;
  node: string;
  type: string;
  payload: unknown;
}

interface Pending {
  event: RecordedEvent;
  /** The payload's JSON, for the row. */
  payload: string;
  record: boolean;
}

class StoreEventHistory implements EventHistory {
  readonly node: string;
  readonly #store: Store;
  readonly #keep: number;
  readonly #keepMs: number;
  readonly #liveOnly: ReadonlySet<string>;
  readonly #flushMs: number;
  readonly #batchSize: number;
  readonly #maxPending: number;
  readonly #pruneMs: number;
  readonly #retryMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #listeners = new Set<BatchListener>();
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #unlisten: (() => void) | undefined;
  #lost = 0;
  #failing = false;
  #writtenSincePrune = 0;
  #lastPrune = -Infinity;

  constructor(store: Store, node: string, options: EventHistoryOptions) {
    this.#store = store;
    this.node = node;
    this.#keep = positive(options.keep ?? 10_000, "keep");
    this.#keepMs = positive(options.keepDays ?? 7, "keepDays") * DAY_MS;
    this.#liveOnly = new Set(options.liveOnly ?? LIVE_ONLY);
    this.#flushMs = positive(options.flushMs ?? 50, "flushMs");
    this.#batchSize = positive(options.batchSize ?? 500, "batchSize");
    this.#maxPending = positive(options.maxPending ?? 10_000, "maxPending");
    this.#pruneMs = positive(options.pruneMs ?? 60_000, "pruneMs");
    this.#retryMs = positive(options.retryMs ?? 1_000, "retryMs");
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  get lost(): number {
    return this.#lost;
  }

  listen(unlisten: () => void): void {
    this.#unlisten = unlisten;
  }

  subscribe(listener: BatchListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  add(envelope: AnyEnvelope): void {
    const type = envelope.type;
    let payload: string;
    try {
      // undefined (no payload) has no JSON of its own.
      payload = envelope.payload === undefined ? "null" : JSON.stringify(envelope.payload);
    } catch (error) {
      // A payload JSON cannot carry (a cycle, a bigint) is a bug of its publisher; say so in its place.
      payload = JSON.stringify({ unserializable: error instanceof Error ? error.message : String(error) });
    }
    this.#pending.push({
      event: {
        id: undefined,
        eventId: envelope.id,
        at: envelope.at,
        node: envelope.node,
        type,
        device: deviceOf(envelope.payload),
        task: taskOf(type, envelope.payload),
        data: envelopeJson(envelope.id, envelope.at, envelope.node, type, payload),
      },
      payload,
      record: !this.#liveOnly.has(type),
    });
    if (this.#pending.length > this.#maxPending) {
      const over = this.#pending.length - this.#maxPending;
      this.#pending.splice(0, over);
      this.#lost += over;
    }
    if (this.#pending.length >= this.#batchSize) this.#write();
    else this.#timer ??= setTimeout(() => this.#write(), this.#flushMs);
  }

  async flush(): Promise<void> {
    while (this.#pending.length > 0 || this.#writing) {
      this.#write();
      await this.#writing;
      // A failed write leaves its batch waiting for the retry: a flush does not spin on it.
      if (this.#failing) return;
    }
  }

  async close(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    this.#failing = false;
    await this.flush();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  /** Starts the writer unless it runs; it writes batch after batch until nothing waits. */
  #write(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#writing) return;
    this.#writing = this.#writeAll().finally(() => {
      this.#writing = undefined;
      // Events that came after the last check of the loop, when their timer was not set.
      if (this.#pending.length > 0 && !this.#failing) this.#write();
    });
  }

  async #writeAll(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#batchSize);
      try {
        await this.#insert(batch);
      } catch (error) {
        this.#pending.unshift(...batch);
        if (!this.#failing) {
          this.#logger.warn(
            { store: this.#store.location, err: error instanceof Error ? error.message : String(error) },
            "cannot record events; trying again",
          );
        }
        this.#failing = true;
        this.#timer = setTimeout(() => this.#write(), this.#retryMs);
        return;
      }
      if (this.#failing) this.#logger.info({ store: this.#store.location }, "recording events again");
      this.#failing = false;
      this.#publish(batch.map((p) => p.event));
      this.#writtenSincePrune += batch.length;
      if (
        this.#writtenSincePrune >= Math.max(100, this.#keep / 10) ||
        this.#clock.now() - this.#lastPrune >= this.#pruneMs
      ) {
        await this.prune().catch((error: unknown) => {
          this.#logger.warn(
            { store: this.#store.location, err: error instanceof Error ? error.message : String(error) },
            "cannot prune the event history",
          );
        });
      }
    }
  }

  async #insert(batch: readonly Pending[]): Promise<void> {
    const recorded = batch.filter((p) => p.record);
    if (recorded.length === 0) return;
    const ids = await this.#store.db.transaction().execute(async (trx) => {
      if (this.#store.dialect === "postgres")
        await sql`select pg_advisory_xact_lock(${PG_EVENTS_LOCK})`.execute(trx);
      const drawn = new Map<string, number>();
      let from = 0;
      while (from < recorded.length) {
        const size = INSERT_SIZES.find((n) => n <= recorded.length - from) ?? 1;
        for (const row of await insertRows(trx, recorded.slice(from, from + size)))
          drawn.set(row.event_id, row.id);
        from += size;
      }
      return drawn;
    });
    for (const p of recorded) p.event.id = ids.get(p.event.eventId);
  }

  #publish(batch: readonly RecordedEvent[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(batch);
      } catch (error) {
        this.#logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          "an event history subscriber failed",
        );
      }
    }
  }

  async prune(): Promise<number> {
    this.#lastPrune = this.#clock.now();
    this.#writtenSincePrune = 0;
    const db = this.#store.db;
    // The newest id beyond the count bound, and the newest id older than the age bound.
    const [beyondCount, tooOld] = await Promise.all([
      db
        .selectFrom("events")
        .select("id")
        .orderBy("id", "desc")
        .offset(this.#keep)
        .limit(1)
        .executeTakeFirst(),
      db
        .selectFrom("events")
        .select((eb) => eb.fn.max("id").as("id"))
        .where("at", "<", this.#clock.now() - this.#keepMs)
        .executeTakeFirst(),
    ]);
    const cut = Math.max(beyondCount?.id ?? 0, tooOld?.id ?? 0);
    if (cut === 0) return 0;
    return db.transaction().execute(async (trx) => {
      const deleted = await trx.deleteFrom("events").where("id", "<=", cut).executeTakeFirst();
      await trx
        .updateTable("events_pruned")
        .set({ through: cut })
        .where("id", "=", 1)
        .where("through", "<", cut)
        .execute();
      return Number(deleted.numDeletedRows);
    });
  }

  async since(afterId: number, filter: HistoryFilter, limit: number): Promise<RecordedEvent[]> {
    let query = this.#store.db
      .selectFrom("events")
      .select(["id", "event_id", "at", "node", "type", "device", "task", "payload"])
      .where("id", ">", afterId);
    if (filter.node !== undefined) query = query.where("node", "=", filter.node);
    if (filter.task !== undefined) query = query.where("task", "=", filter.task);
    if (filter.devices !== undefined && filter.devices.length > 0)
      query = query.where("device", "in", filter.devices);
    const types = filter.types ?? [];
    if (types.length > 0) {
      query = query.where((eb) =>
        eb.or(
          types.map((type) => {
            const prefix = typePrefix(type);
            return prefix === undefined
              ? eb("type", "=", type)
              : eb(eb.fn("substr", [eb.ref("type"), eb.lit(1), eb.lit(prefix.length)]), "=", prefix);
          }),
        ),
      );
    }
    const rows = await query.orderBy("id").limit(limit).execute();
    return rows.map((row) => ({
      id: row.id,
      eventId: row.event_id,
      at: row.at,
      node: row.node,
      type: row.type,
      device: row.device,
      task: row.task,
      data: envelopeJson(row.event_id, row.at, row.node, row.type, row.payload),
    }));
  }

  async horizon(): Promise<HistoryHorizon> {
    const db = this.#store.db;
    const [pruned, newest] = await Promise.all([
      db.selectFrom("events_pruned").select("through").where("id", "=", 1).executeTakeFirst(),
      db
        .selectFrom("events")
        .select((eb) => eb.fn.max("id").as("id"))
        .executeTakeFirst(),
    ]);
    const prunedThrough = pruned?.through ?? 0;
    return { prunedThrough, newest: Math.max(prunedThrough, newest?.id ?? 0) };
  }
}

function insertRows(
  trx: Kysely<Schema>,
  batch: readonly Pending[],
): Promise<{ id: number; event_id: string }[]> {
  return trx
    .insertInto("events")
    .values(
      batch.map(({ event, payload }) => ({
        event_id: event.eventId,
        at: event.at,
        node: event.node,
        type: event.type,
        device: event.device,
        task: event.task,
        payload,
      })),
    )
    .returning(["id", "event_id"])
    .execute();
}

/** The envelope's JSON from its parts, the payload already JSON: what JSON.stringify(envelope) gives. */
function envelopeJson(id: string, at: number, node: string, type: string, payload: string): string {
  return `{"id":${JSON.stringify(id)},"at":${at},"node":${JSON.stringify(node)},"type":${JSON.stringify(type)},"payload":${payload}}`;
}

/** The task a `task.*` event is about (its payload's `id`). */
function taskOf(type: string, payload: unknown): string | null {
  if (!type.startsWith("task.") || typeof payload !== "object" || payload === null) return null;
  const { id } = payload as { id?: unknown };
  return typeof id === "string" ? id : null;
}

/** Same as ferry.yaml's device names (config/schema.ts NAME_PATTERN). */
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * The device an event concerns: payload `device`, else `printer` (the farm's events name their
 * printer so), else the device of payload `target` (a target's label is `<device>` or
 * `<device>:<folder>`; a local folder, `./backup`, and `source` name none).
 */
export function deviceOf(payload: unknown): string | null {
  if (typeof payload !== "object" || payload === null) return null;
  const { device, printer, target } = payload as { device?: unknown; printer?: unknown; target?: unknown };
  if (typeof device === "string") return device;
  if (typeof printer === "string") return printer;
  if (typeof target !== "string" || target === "source") return null;
  const name = target.split(":", 1)[0] ?? "";
  return DEVICE_NAME.test(name) ? name : null;
}

/** `task.*` → `task.`; an exact type name → undefined. */
export function typePrefix(type: string): string | undefined {
  return type.endsWith(".*") ? type.slice(0, -1) : undefined;
}

/** A test for event types from a filter's list (exact names and `prefix.*`); undefined: all. */
export function typeMatcher(types: readonly string[] | undefined): ((type: string) => boolean) | undefined {
  if (types === undefined || types.length === 0) return undefined;
  const exact = new Set(types.filter((t) => typePrefix(t) === undefined));
  const prefixes = types.map(typePrefix).filter((p) => p !== undefined);
  return (type) => exact.has(type) || prefixes.some((prefix) => type.startsWith(prefix));
}

function positive(value: number, name: string): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`event history option ${name} must be a positive number, not ${value}`);
  }
  return value;
}
