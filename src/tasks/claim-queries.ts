/**
 * How a claim finds its task: the best runnable task (priority desc, runAt asc, id asc) whose queue
 * has none running. Two ways, tried in order:
 *
 * - `topTasks`: the best CLAIM_WINDOW queued tasks overall, and the best of those whose queue is
 *   free. Cheap when there is little backlog (the usual case); if one of them is in a free queue,
 *   the best such is also the best of all (everything outside the window ranks below it).
 * - `queueHeads`: each free queue's next task (one index lookup per queue), then the best of those.
 *   It never reads the tasks waiting behind running ones, however many there are (a farm's
 *   backlog), so it is the fallback when the window holds only tasks of busy queues.
 *
 * Both name the task `t` and its queue row `q`: a PostgreSQL claim locks those two rows.
 */
import { sql, type ExpressionBuilder, type QueryCreator, type SelectQueryBuilder } from "kysely";
import type { Schema, TaskQueuesTable, TasksTable } from "../store/schema.ts";
import type { ClaimOptions } from "./queue.ts";
import { QUEUED } from "./task-rows.ts";

/** Queued tasks the first way looks at. */
export const CLAIM_WINDOW = 32;

/** A query for the chosen task's id and queue, with the task as `t` and its queue row as `q`. */
export type Choice = SelectQueryBuilder<
  Schema & { t: TasksTable; q: TaskQueuesTable },
  "t" | "q",
  { id: string; queue: string }
>;
export type Chooser = (db: QueryCreator<Schema>) => Choice;

export function choosers(options: ClaimOptions, now: number, postgres: boolean): Chooser[] {
  const excluded = options.excludeQueues ?? [];
  // A task without a scope is never excluded by one ("not in" alone would pass over nulls).
  const scopes = options.excludeScopes ?? [];
  const topTasks: Chooser = (db) =>
    db
      .selectFrom((eb) =>
        eb
          .selectFrom("tasks")
          .select(["id", "queue", "priority", "run_at"])
          .where("status", "=", QUEUED)
          .where("run_at", "<=", now)
          .$if(options.kinds !== undefined, (qb) => qb.where("kind", "in", options.kinds ?? []))
          .$if(excluded.length > 0, (qb) => qb.where("queue", "not in", excluded))
          .$if(scopes.length > 0, (qb) =>
            qb.where((eb) => eb.or([eb("scope", "is", null), eb("scope", "not in", scopes)])),
          )
          .orderBy("priority", "desc")
          .orderBy("run_at")
          .orderBy("id")
          .limit(sql.lit(CLAIM_WINDOW))
          .as("c"),
      )
      .innerJoin("task_queues as q", "q.name", "c.queue")
      .innerJoin("tasks as t", "t.id", "c.id")
      .select(["t.id", "t.queue"])
      .where("q.running_id", "is", null)
      // Checked again on the row a PostgreSQL claim locks, should another claim have changed it.
      .where("t.status", "=", QUEUED)
      .orderBy("c.priority", "desc")
      .orderBy("c.run_at")
      .orderBy("c.id")
      .limit(sql.lit(1));

  const next = (eb: ExpressionBuilder<Schema & { q: TaskQueuesTable }, "q">) =>
    eb
      .selectFrom("tasks as h")
      .select("h.id")
      .whereRef("h.queue", "=", "q.name")
      .where("h.status", "=", QUEUED)
      .where("h.run_at", "<=", now)
      .$if(options.kinds !== undefined, (qb) => qb.where("h.kind", "in", options.kinds ?? []))
      .$if(scopes.length > 0, (qb) =>
        qb.where((eb) => eb.or([eb("h.scope", "is", null), eb("h.scope", "not in", scopes)])),
      )
      .orderBy("h.priority", "desc")
      .orderBy("h.run_at")
      .orderBy("h.id")
      .limit(sql.lit(1));
  const queueHeads: Chooser = (db) =>
    // PostgreSQL reaches the heads by a LATERAL join, which it plans well even without statistics.
    // SQLite has no LATERAL: a subquery in the join, and CROSS JOIN, which SQLite takes as "this
    // order", keeps the queues outside; left to itself it walked every queued task and ran the
    // subquery for each (4 ms a claim with 5,000 queued).
    (postgres
      ? db
          .selectFrom("task_queues as q")
          .innerJoinLateral(
            (eb) => next(eb).as("next"),
            (join) => join.onTrue(),
          )
          .innerJoin("tasks as t", "t.id", "next.id")
      : db
          .selectFrom("task_queues as q")
          .crossJoin("tasks as t")
          .where((eb) => eb("t.id", "=", next(eb)))
    )
      .select(["t.id", "t.queue"])
      .where("q.running_id", "is", null)
      .where("t.status", "=", QUEUED)
      .$if(excluded.length > 0, (qb) => qb.where("q.name", "not in", excluded))
      .orderBy("t.priority", "desc")
      .orderBy("t.run_at")
      .orderBy("t.id")
      .limit(sql.lit(1));

  return [topTasks, queueHeads];
}
