/**
 * Print jobs in the store: creation (N copies of a request become N jobs of one order), reads,
 * and the one way a job changes state, `transition`, which checks the transition table, moves the
 * job only from the state it read (so two nodes cannot both move it) and writes the history row in
 * the same transaction. What a state change implies for the printer's bed is written there too.
 */
import type { Transaction } from "kysely";
import { FerryError } from "../core/errors.ts";
import type { Publisher } from "../core/events.ts";
import { prepare } from "../store/prepared.ts";
import type { Schema } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import { isUniqueViolation } from "../tasks/task-rows.ts";
import type { FarmEvents } from "./events.ts";
import {
  COLUMNS,
  farmId,
  toColumns,
  toJob,
  type HistoryEntry,
  type Job,
  type JobUpdate,
  type NewJob,
  type Row,
} from "./job-rows.ts";
import type { SchedulerJob } from "./scheduler.ts";
import { canTransition, isJobState, ON_PRINTER, type JobState } from "./states.ts";

export type { HistoryEntry, Job, JobFile, JobUpdate, NewJob } from "./job-rows.ts";

export interface TransitionOptions {
  actor: string;
  reason?: string;
  /** The state(s) the caller saw: CONFLICT when the job is in another by now. */
  expect?: JobState | readonly JobState[];
  set?: JobUpdate;
}

export interface JobFilter {
  state?: JobState | readonly JobState[];
  printer?: string;
  owner?: string;
  orderId?: string;
  origin?: "user" | "printer";
  /** Jobs of this library file. */
  fileId?: string;
  /** Newest first; default 500. */
  limit?: number;
}

const expected = (expect: TransitionOptions["expect"]): readonly JobState[] | undefined =>
  expect === undefined ? undefined : typeof expect === "string" ? [expect] : expect;

/** The job holding a printer: every worker asks every tick, so it is compiled once (store/prepared.ts). */
const selectCurrent = prepare((db, printer: string) =>
  db.selectFrom("jobs").select(COLUMNS).where("printer", "=", printer).where("state", "in", ON_PRINTER),
);

export class Jobs {
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #ids: (prefix: string) => string;
  readonly #bus: Publisher<FarmEvents> | undefined;

  constructor(
    store: Store,
    options: { clock?: () => number; ids?: (prefix: string) => string; bus?: Publisher<FarmEvents> } = {},
  ) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
    this.#ids = options.ids ?? farmId;
    this.#bus = options.bus;
  }

  /** Creates the jobs of one order in one transaction, each with its first history row. */
  async create(requests: readonly NewJob[], actor: string): Promise<Job[]> {
    if (requests.length === 0) throw new FerryError("NAME_INVALID", "an order needs at least one job");
    const now = this.#clock();
    const orderId = this.#ids("o-");
    const rows: Row[] = requests.map((r) => ({
      id: this.#ids("j-"),
      order_id: orderId,
      file_id: r.file.id,
      file_name: r.file.name,
      file_sha256: r.file.sha256,
      owner: r.owner,
      priority: r.priority ?? 0,
      required_model: r.model ?? null,
      required_tags: JSON.stringify(r.tags ?? []),
      notes: r.notes ?? null,
      state: r.state,
      printer: r.printer ?? null,
      printer_job_id: r.printerJobId ?? null,
      printer_path: r.printerPath ?? null,
      origin: r.origin ?? "user",
      taken_over_by: null,
      progress: r.progress ?? null,
      remaining_s: r.remainingS ?? null,
      reason: null,
      uploaded_at: null,
      start_requested_at: null,
      started_at: r.startedAt ?? null,
      finished_at: null,
      created_at: now,
      updated_at: now,
    }));
    try {
      await this.#store.db.transaction().execute(async (trx) => {
        await trx.insertInto("jobs").values(rows).execute();
        await trx
          .insertInto("job_history")
          .values(
            rows.map((row) => ({
              job_id: row.id,
              seq: 1,
              from_state: null,
              to_state: row.state,
              actor,
              at: now,
              reason: null,
            })),
          )
          .execute();
        for (const row of rows)
          if (row.printer !== null && (row.state === "printing" || row.state === "paused"))
            await setBed(trx, row.printer, false, actor, now);
      });
    } catch (error) {
      throw this.#conflict(error, rows[0]?.printer ?? null);
    }
    const jobs = rows.map(toJob);
    for (const job of jobs) this.#emit(job, null, actor, null);
    return jobs;
  }

  async get(id: string): Promise<Job | undefined> {
    const row = await this.#store.db
      .selectFrom("jobs")
      .select(COLUMNS)
      .where("id", "=", id)
      .executeTakeFirst();
    return row && toJob(row);
  }

  /** The job, or NOT_FOUND. */
  async require(id: string): Promise<Job> {
    const job = await this.get(id);
    if (!job) throw new FerryError("NOT_FOUND", `there is no job ${id}`, { subject: id, retryable: false });
    return job;
  }

  /** Jobs, newest first. */
  async list(filter: JobFilter = {}): Promise<Job[]> {
    let query = this.#store.db.selectFrom("jobs").select(COLUMNS);
    const states = expected(filter.state);
    if (states) query = query.where("state", "in", states);
    if (filter.printer !== undefined) query = query.where("printer", "=", filter.printer);
    if (filter.owner !== undefined) query = query.where("owner", "=", filter.owner);
    if (filter.orderId !== undefined) query = query.where("order_id", "=", filter.orderId);
    if (filter.origin !== undefined) query = query.where("origin", "=", filter.origin);
    if (filter.fileId !== undefined) query = query.where("file_id", "=", filter.fileId);
    const rows = await query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(filter.limit ?? 500)
      .execute();
    return rows.map(toJob);
  }

  /** The queued jobs as the scheduler weighs them, in its order: only what it reads (a queue may be long). */
  async queued(): Promise<SchedulerJob[]> {
    const rows = await this.#store.db
      .selectFrom("jobs")
      .select(["id", "priority", "created_at", "required_model", "required_tags"])
      .where("state", "=", "queued")
      .orderBy("priority", "desc")
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    // Jobs of one kind share one tags list, parsed once: a long queue holds a few kinds.
    const tags = new Map<string, string[]>();
    return rows.map((r) => {
      let list = tags.get(r.required_tags);
      if (!list) tags.set(r.required_tags, (list = JSON.parse(r.required_tags) as string[]));
      return { id: r.id, priority: r.priority, createdAt: r.created_at, model: r.required_model, tags: list };
    });
  }

  /** The job that holds the printer (scheduled … cancelling), if any. */
  async current(printer: string): Promise<Job | undefined> {
    const [row] = (await selectCurrent(this.#store.db, printer)).rows;
    return row && toJob(row);
  }

  /** Every job holding a printer, by printer. */
  async onPrinters(): Promise<Map<string, Job>> {
    const rows = await this.#store.db
      .selectFrom("jobs")
      .select(COLUMNS)
      .where("state", "in", ON_PRINTER)
      .execute();
    return new Map(rows.map((row) => [row.printer ?? "", toJob(row)]));
  }

  /** The printer's latest jobs that reached it (for telling its finished print from an unknown one). */
  async recent(printer: string, limit = 5): Promise<Job[]> {
    const rows = await this.#store.db
      .selectFrom("jobs")
      .select(COLUMNS)
      .where("printer", "=", printer)
      .where("started_at", "is not", null)
      .orderBy("started_at", "desc")
      .limit(limit)
      .execute();
    return rows.map(toJob);
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const rows = await this.#store.db
      .selectFrom("job_history")
      .select(["job_id", "seq", "from_state", "to_state", "actor", "at", "reason"])
      .where("job_id", "=", id)
      .orderBy("seq")
      .execute();
    return rows.map((r) => ({
      jobId: r.job_id,
      seq: r.seq,
      from: r.from_state !== null && isJobState(r.from_state) ? r.from_state : null,
      to: r.to_state as JobState,
      actor: r.actor,
      at: r.at,
      reason: r.reason,
    }));
  }

  /**
   * Moves a job to `to`: CONFLICT (naming the state) when the table does not allow it, when the
   * job is not in `expect`, or when another node moved it meanwhile; NOT_FOUND for no such job.
   */
  async transition(id: string, to: JobState, options: TransitionOptions): Promise<Job> {
    const now = this.#clock();
    const reason = options.reason ?? null;
    let moved: { job: Job; from: JobState; bed: boolean | undefined };
    try {
      moved = await this.#store.db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom("jobs").select(COLUMNS).where("id", "=", id).executeTakeFirst();
        if (!row)
          throw new FerryError("NOT_FOUND", `there is no job ${id}`, { subject: id, retryable: false });
        const from = toJob(row).state;
        const wanted = expected(options.expect);
        if (wanted && !wanted.includes(from)) {
          throw conflict(`job ${id} is ${from}, not ${wanted.join(" or ")}`, id);
        }
        if (!canTransition(from, to)) throw conflict(`job ${id} is ${from}; it cannot become ${to}`, id);
        const set: Partial<Row> = { ...toColumns(options.set ?? {}), state: to, reason, updated_at: now };
        if (to === "queued") {
          // Back in the queue: nothing of the printer it left stays with it.
          Object.assign(set, {
            printer: null,
            printer_job_id: null,
            printer_path: null,
            uploaded_at: null,
            start_requested_at: null,
            progress: null,
            remaining_s: null,
            // A failed job queued again is a new run: its old times would be taken for the new print's.
            started_at: null,
            finished_at: null,
          });
        }
        if (to === "printing" && row.started_at === null && set.started_at === undefined)
          set.started_at = now;
        if (to === "printed") Object.assign(set, { progress: 1, remaining_s: 0 });
        if (["printed", "completed", "cancelled", "failed"].includes(to) && row.finished_at === null)
          set.finished_at = now;
        const updated = await trx
          .updateTable("jobs")
          .set(set)
          .where("id", "=", id)
          .where("state", "=", from)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) throw conflict(`job ${id} changed meanwhile`, id);
        const last = await trx
          .selectFrom("job_history")
          .select((eb) => eb.fn.max("seq").as("seq"))
          .where("job_id", "=", id)
          .executeTakeFirst();
        await trx
          .insertInto("job_history")
          .values({
            job_id: id,
            seq: (last?.seq ?? 0) + 1,
            from_state: from,
            to_state: to,
            actor: options.actor,
            at: now,
            reason,
          })
          .execute();
        const printer = set.printer ?? row.printer;
        // The bed holds a part from the moment a print starts until someone marks it clear.
        let bed: boolean | undefined;
        if ((to === "printing" || to === "printed") && from !== "paused") bed = false;
        if (to === "completed") bed = true;
        if (printer !== null && bed !== undefined) await setBed(trx, printer, bed, options.actor, now);
        return { job: toJob({ ...row, ...set }), from, bed };
      });
    } catch (error) {
      throw this.#conflict(error, options.set?.printer ?? null);
    }
    const { job, from, bed } = moved;
    this.#emit(job, from, options.actor, reason);
    if (bed !== undefined && job.printer !== null)
      this.#bus?.emit("printer.bed", { printer: job.printer, clear: bed, by: options.actor });
    return job;
  }

  /**
   * Sets columns of a job that is in one of `states` (progress, the upload's end, a start request,
   * a new priority): not a transition, no history row. False when the job is in another state.
   */
  async update(id: string, states: JobState | readonly JobState[], update: JobUpdate): Promise<boolean> {
    const result = await this.#store.db
      .updateTable("jobs")
      .set({ ...toColumns(update), updated_at: this.#clock() })
      .where("id", "=", id)
      .where("state", "in", expected(states) ?? [])
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Records that a start is being asked for, once: true for the one caller that set it (only that
   * caller may call the printer's startJob), false when it was set already or the job moved on.
   */
  async claimStart(id: string): Promise<boolean> {
    const result = await this.#store.db
      .updateTable("jobs")
      .set({ start_requested_at: this.#clock(), updated_at: this.#clock() })
      .where("id", "=", id)
      .where("state", "=", "uploading")
      .where("start_requested_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  #conflict(error: unknown, printer: string | null): unknown {
    if (!isUniqueViolation(error)) return error;
    const message =
      printer === null ? "another node moved this job meanwhile" : `printer ${printer} has a job already`;
    return new FerryError("CONFLICT", message, {
      cause: error,
      retryable: false,
      ...(printer ? { subject: printer } : {}),
    });
  }

  #emit(job: Job, from: JobState | null, actor: string, reason: string | null): void {
    this.#bus?.emit("job.state", {
      id: job.id,
      orderId: job.orderId,
      file: job.file.name,
      owner: job.owner,
      origin: job.origin,
      printer: job.printer,
      from,
      to: job.state,
      actor,
      reason,
    });
  }
}

function conflict(message: string, subject: string): FerryError {
  return new FerryError("CONFLICT", message, { subject, retryable: false });
}

/** Sets a printer's bed flag within a transaction (the row is made when missing). */
export async function setBed(
  trx: Transaction<Schema>,
  printer: string,
  clear: boolean,
  by: string,
  now: number,
): Promise<void> {
  await trx
    .insertInto("printer_farm_state")
    .values({
      printer,
      bed_clear: clear ? 1 : 0,
      bed_changed_by: by,
      bed_changed_at: now,
      maintenance: null,
      maintenance_by: null,
      maintenance_at: null,
      lease_holder: null,
      lease_until: null,
      heating: 0,
      updated_at: now,
    })
    .onConflict((oc) =>
      oc
        .column("printer")
        .doUpdateSet({ bed_clear: clear ? 1 : 0, bed_changed_by: by, bed_changed_at: now, updated_at: now }),
    )
    .execute();
}
