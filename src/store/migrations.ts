/**
 * The store's migrations, in code, in order. Each is written once for both dialects: only types
 * both know (text, integer, bigint) and partial indexes (both have them). A migration that has
 * shipped is never edited; a change is a new entry at the end.
 */
import { PostgresAdapter, sql, type Kysely } from "kysely";
import type { Migration, MigrationProvider } from "kysely/migration";

const migrations: Record<string, Migration> = {
  "0001_initial": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("tasks")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("key", "text", (c) => c.notNull())
        .addColumn("queue", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("priority", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("run_at", "bigint", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("max_attempts", "integer", (c) => c.notNull())
        .addColumn("status", "text", (c) =>
          c.notNull().check(sql`status in ('queued', 'running', 'done', 'dead')`),
        )
        .addColumn("locked_by", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("checkpoint", "text")
        .addColumn("progress", "bigint")
        .addColumn("last_error", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      // The dedupe rule itself: at most one queued task per key (running ones do not count).
      await db.schema
        .createIndex("tasks_queued_key")
        .on("tasks")
        .column("key")
        .unique()
        .where(sql.ref("status"), "=", "queued")
        .execute();
      // Claim order among queued tasks, overall and per queue (src/tasks/claim-queries.ts).
      await db.schema
        .createIndex("tasks_claim")
        .on("tasks")
        .columns(["priority desc", "run_at", "id"])
        .where(sql.ref("status"), "=", "queued")
        .execute();
      await db.schema
        .createIndex("tasks_queue_next")
        .on("tasks")
        .columns(["queue", "priority desc", "run_at", "id"])
        .where(sql.ref("status"), "=", "queued")
        .execute();
      await db.schema.createIndex("tasks_queue_status").on("tasks").columns(["queue", "status"]).execute();
      await db.schema
        .createIndex("tasks_lease")
        .on("tasks")
        .column("lease_until")
        .where(sql.ref("status"), "=", "running")
        .execute();
      await db.schema
        .createIndex("tasks_done")
        .on("tasks")
        .column("updated_at")
        .where(sql.ref("status"), "=", "done")
        .execute();

      await db.schema
        .createTable("task_queues")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("running_id", "text")
        .execute();

      await db.schema
        .createTable("device_states")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("since", "bigint", (c) => c.notNull())
        .addColumn("detail", "text")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("deliveries")
        .addColumn("sync", "text", (c) => c.notNull())
        .addColumn("target", "text", (c) => c.notNull())
        .addColumn("key", "text", (c) => c.notNull())
        .addColumn("source_size", "bigint", (c) => c.notNull())
        .addColumn("source_mtime", "bigint")
        .addColumn("source_hash_kind", "text")
        .addColumn("source_hash", "text")
        .addColumn("target_size", "bigint")
        .addColumn("target_mtime", "bigint")
        .addColumn("delivered_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("deliveries_pk", ["sync", "target", "key"])
        .execute();
    },
  },
  "0002_devices": {
    async up(db: Kysely<unknown>) {
      // Devices added at run time (the API), beside those of ferry.yaml.
      await db.schema
        .createTable("devices")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("options", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0003_users": {
    async up(db: Kysely<unknown>) {
      // Who may use the server (src/auth/): users with a role, browser sessions, API tokens.
      // Sessions and tokens are kept as SHA-256 digests of their secrets, never the secrets.
      await db.schema
        .createTable("users")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("role", "text", (c) =>
          c.notNull().check(sql`role in ('admin', 'operator', 'user', 'viewer')`),
        )
        // argon2id (PHC string); null: the user signs in with API tokens only.
        .addColumn("password_hash", "text")
        .addColumn("disabled", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("sessions")
        .addColumn("id_hash", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("sessions_user").on("sessions").column("user_id").execute();
      await db.schema
        .createTable("api_tokens")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) =>
          c.notNull().check(sql`role in ('admin', 'operator', 'user', 'viewer')`),
        )
        .addColumn("secret_hash", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        // null: the token never expires.
        .addColumn("expires_at", "bigint")
        .addColumn("last_used_at", "bigint")
        .addUniqueConstraint("api_tokens_user_name", ["user_id", "name"])
        .execute();
    },
  },
  "0004_events": {
    async up(db: Kysely<unknown>) {
      // The event history behind the server's event stream (event-history.ts). `id` is the stream's
      // position: assigned by the database, never reused (SQLite AUTOINCREMENT, a PostgreSQL
      // identity), so a pruned or emptied table never hands out an id a client has already seen.
      const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
      await db.schema
        .createTable("events")
        .addColumn("id", postgres ? "bigint" : "integer", (c) =>
          postgres ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("device", "text")
        .addColumn("task", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .execute();
      // A task's history (the API's task view) without reading the whole table.
      await db.schema
        .createIndex("events_task")
        .on("events")
        .columns(["task", "id"])
        .where(sql.ref("task"), "is not", null)
        .execute();
      // The newest id pruned so far: a client resuming from an older id has missed events.
      await db.schema
        .createTable("events_pruned")
        .addColumn("id", "integer", (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn("through", "bigint", (c) => c.notNull())
        .execute();
      await sql`insert into events_pruned (id, through) values (1, 0)`.execute(db);
    },
  },
  "0005_task_scope": {
    async up(db: Kysely<unknown>) {
      // What a task belongs to (a sync), so lists filter by it and a paused sync's tasks wait.
      await db.schema.alterTable("tasks").addColumn("scope", "text").execute();
      await db.schema.createIndex("tasks_scope_status").on("tasks").columns(["scope", "status"]).execute();
      // Syncs paused by an operator stay paused across restarts.
      await db.schema
        .createTable("paused_syncs")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("paused_at", "bigint", (c) => c.notNull())
        .addColumn("paused_by", "text")
        .execute();
    },
  },
  "0006_library": {
    async up(db: Kysely<unknown>) {
      // The farm's file library (src/farm/library): one row per content, its bytes under
      // <data_dir>/library/<sha256[0..2]>/<sha256>.
      await db.schema
        .createTable("library_files")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("sha256", "text", (c) => c.notNull().unique())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("size", "bigint", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull().check(sql`kind in ('gcode', 'bgcode', '3mf')`))
        .addColumn("metadata", "text")
        .addColumn("metadata_problem", "text")
        .addColumn("thumbnails", "text", (c) => c.notNull())
        .addColumn("uploaded_by", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("library_files_created")
        .on("library_files")
        .columns(["created_at", "id"])
        .execute();
    },
  },
  "0007_farm": {
    async up(db: Kysely<unknown>) {
      // Print jobs (src/farm/jobs.ts): one row per copy; copies of one request share an order.
      await db.schema
        .createTable("jobs")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("order_id", "text", (c) => c.notNull())
        // The file library's id (none for a print started at the printer), name and SHA-256.
        .addColumn("file_id", "text")
        .addColumn("file_name", "text", (c) => c.notNull())
        .addColumn("file_sha256", "text")
        .addColumn("owner", "text")
        .addColumn("priority", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("required_model", "text")
        // JSON list of tags the printer must all have.
        .addColumn("required_tags", "text", (c) => c.notNull().defaultTo("[]"))
        .addColumn("notes", "text")
        .addColumn("state", "text", (c) =>
          c
            .notNull()
            .check(
              sql`state in ('pending_approval', 'queued', 'scheduled', 'uploading', 'printing', 'paused', 'printed', 'completed', 'cancelling', 'cancelled', 'failed')`,
            ),
        )
        .addColumn("printer", "text")
        .addColumn("printer_job_id", "text")
        .addColumn("printer_path", "text")
        .addColumn("origin", "text", (c) => c.notNull().check(sql`origin in ('user', 'printer')`))
        .addColumn("taken_over_by", "text")
        // 0..1; both dialects know double precision.
        .addColumn("progress", "double precision")
        .addColumn("remaining_s", "integer")
        .addColumn("reason", "text")
        .addColumn("uploaded_at", "bigint")
        .addColumn("start_requested_at", "bigint")
        .addColumn("started_at", "bigint")
        .addColumn("finished_at", "bigint")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      // One job at a time on a printer, whichever node assigns it.
      await db.schema
        .createIndex("jobs_on_printer")
        .on("jobs")
        .column("printer")
        .unique()
        .where(
          sql<boolean>`state in ('scheduled', 'uploading', 'printing', 'paused', 'printed', 'cancelling')`,
        )
        .execute();
      await db.schema
        .createIndex("jobs_state")
        .on("jobs")
        .columns(["state", "priority desc", "created_at"])
        .execute();
      await db.schema.createIndex("jobs_order").on("jobs").column("order_id").execute();
      await db.schema
        .createIndex("jobs_printer_recent")
        .on("jobs")
        .columns(["printer", "created_at"])
        .execute();

      // Every transition of a job; (job_id, seq) also keeps two nodes from both moving one job.
      await db.schema
        .createTable("job_history")
        .addColumn("job_id", "text", (c) => c.notNull())
        .addColumn("seq", "integer", (c) => c.notNull())
        .addColumn("from_state", "text")
        .addColumn("to_state", "text", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("reason", "text")
        .addPrimaryKeyConstraint("job_history_pk", ["job_id", "seq"])
        .execute();

      // What the farm keeps per printer: the bed, maintenance, and which node drives it.
      await db.schema
        .createTable("printer_farm_state")
        .addColumn("printer", "text", (c) => c.primaryKey())
        .addColumn("bed_clear", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("bed_changed_by", "text")
        .addColumn("bed_changed_at", "bigint")
        .addColumn("maintenance", "text")
        .addColumn("maintenance_by", "text")
        .addColumn("maintenance_at", "bigint")
        .addColumn("lease_holder", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0008_external_users": {
    async up(db: Kysely<unknown>) {
      // Users who sign in through an identity provider (OpenID Connect): who they are there, its
      // issuer and their `sub`, which never changes (a name or an e-mail address may).
      await db.schema.alterTable("users").addColumn("external_issuer", "text").execute();
      await db.schema.alterTable("users").addColumn("external_subject", "text").execute();
      await db.schema
        .createIndex("users_external")
        .on("users")
        .columns(["external_issuer", "external_subject"])
        .unique()
        .where(sql.ref("external_subject"), "is not", null)
        .execute();
    },
  },
  "0009_task_lists": {
    async up(db: Kysely<unknown>) {
      // The API's task list (best first, every state) reads its first page in order instead of
      // sorting the whole table: with 20,000 tasks that sort cost 5-15 ms of CPU per request.
      await db.schema
        .createIndex("tasks_list")
        .on("tasks")
        .columns(["priority desc", "run_at", "id"])
        .execute();
      // The same for one state (the dead ones, the running ones), which would otherwise walk the
      // index above past every task of the other states.
      await db.schema
        .createIndex("tasks_state_list")
        .on("tasks")
        .columns(["status", "priority desc", "run_at", "id"])
        .execute();
    },
  },
  "0010_farm_heating": {
    async up(db: Kysely<unknown>) {
      // Whether the printer heats, as the node driving it saw last: max_heating holds across nodes.
      await db.schema
        .alterTable("printer_farm_state")
        .addColumn("heating", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  "0011_task_keys": {
    async up(db: Kysely<unknown>) {
      // Sync task keys were their parts joined by NUL, which PostgreSQL text refuses (so no such
      // key ever reached a PostgreSQL store); they become JSON arrays of the same parts.
      if (db.getExecutor().adapter instanceof PostgresAdapter) return;
      const rows = await sql<{
        id: string;
        key: string;
      }>`select id, key from tasks where instr(key, char(0)) > 0`.execute(db);
      for (const { id, key } of rows.rows) {
        await sql`update tasks set key = ${JSON.stringify(key.split("\0"))} where id = ${id}`.execute(db);
      }
    },
  },
  "0012_notification_settings": {
    async up(db: Kysely<unknown>) {
      // What each user chose for their own notifications (src/notify/): switched off or not, and
      // the address their e-mail goes to. No row: on, and no address.
      await db.schema
        .createTable("notification_settings")
        .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id").onDelete("cascade"))
        .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("email", "text")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

/** Names of all migrations, oldest first. */
export const migrationNames: readonly string[] = Object.keys(migrations);
