/**
 * The store's tables as Kysely sees them (the same on SQLite and PostgreSQL). Times are integers,
 * ms since the epoch; JSON values (payloads, checkpoints) are text, parsed by their repository.
 */
import type { Generated } from "kysely";

export interface TasksTable {
  id: string;
  kind: string;
  key: string;
  queue: string;
  /** JSON. */
  payload: string;
  priority: number;
  run_at: number;
  attempts: number;
  max_attempts: number;
  /** tasks/queue.ts TaskStatus (the store does not import tasks/: dependencies point the other way). */
  status: "queued" | "running" | "done" | "dead";
  locked_by: string | null;
  lease_until: number | null;
  /** JSON, or null when there is none. */
  checkpoint: string | null;
  progress: number | null;
  last_error: string | null;
  /** tasks/queue.ts Task.scope (e.g. "sync:photos"). */
  scope: string | null;
  created_at: number;
  /** Also when a task finished: done tasks never change again (prune goes by it). */
  updated_at: number;
}

/**
 * One row per task queue, holding the id of its running task. Claims lock this row (`FOR UPDATE
 * SKIP LOCKED` on PostgreSQL), which is what keeps a queue to one running task across nodes.
 */
export interface TaskQueuesTable {
  name: string;
  running_id: string | null;
}

export interface DeviceStatesTable {
  name: string;
  state: string;
  /** When the device entered this state. */
  since: number;
  detail: string | null;
  updated_at: number;
}

export interface DeliveriesTable {
  sync: string;
  target: string;
  /** The target path's comparison key. */
  key: string;
  source_size: number;
  source_mtime: number | null;
  source_hash_kind: string | null;
  source_hash: string | null;
  target_size: number | null;
  target_mtime: number | null;
  delivered_at: number;
}

/** A device added at run time; `options` is the JSON of its ferry.yaml entry less `type`. */
export interface DevicesTable {
  name: string;
  kind: string;
  options: string;
  created_at: number;
  updated_at: number;
}

/** A sync an operator paused: it plans nothing and its tasks wait until it is resumed. */
export interface PausedSyncsTable {
  name: string;
  paused_at: number;
  /** Who paused it (a user's name), when known. */
  paused_by: string | null;
}

/** One recorded event (event-history.ts): `id` is assigned by the database and is the stream's position. */
export interface EventsTable {
  id: Generated<number>;
  /** The envelope's own id (`<boot>-<sequence>`). */
  event_id: string;
  at: number;
  node: string;
  type: string;
  /** The device the event concerns, for filtering; null when none. */
  device: string | null;
  /** The task it is about (a `task.*` event's payload id), for a task's history; null when none. */
  task: string | null;
  /** JSON. */
  payload: string;
}

/** One row (id 1): the newest event id pruned so far. */
export interface EventsPrunedTable {
  id: number;
  through: number;
}

/** auth/roles.ts Role (the store does not import auth/). */
export type RoleName = "admin" | "operator" | "user" | "viewer";

/** A person or a script that may use the server (src/auth/accounts.ts). */
export interface UsersTable {
  id: string;
  name: string;
  role: RoleName;
  /** argon2id PHC string; null: API tokens only. */
  password_hash: string | null;
  /** 0 or 1 (SQLite has no boolean). */
  disabled: number;
  /** The identity provider (OIDC issuer) of a user who signs in there; null: a local user. */
  external_issuer: string | null;
  /** Their `sub` at that provider. */
  external_subject: string | null;
  created_at: number;
  updated_at: number;
}

/** A browser session: the SHA-256 of the cookie's random id. */
export interface SessionsTable {
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
}

/** An API token: the SHA-256 of its secret part; the id is the public part. */
export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  role: RoleName;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}

/** A file of the farm's library (src/farm/library): one row per content (sha256). */
export interface LibraryFilesTable {
  id: string;
  sha256: string;
  /** The name it was first uploaded under. */
  name: string;
  size: number;
  kind: "gcode" | "bgcode" | "3mf";
  /** JSON of the print metadata read from the file, or null when it has none. */
  metadata: string | null;
  /** Why there is no metadata (metadata is null). */
  metadata_problem: string | null;
  /** JSON list of the embedded thumbnails: format, width, height, bytes. */
  thumbnails: string;
  uploaded_by: string | null;
  created_at: number;
}

/** A print job (src/farm/jobs.ts has the states and what each column means). */
export interface JobsTable {
  id: string;
  order_id: string;
  file_id: string | null;
  file_name: string;
  file_sha256: string | null;
  owner: string | null;
  priority: number;
  required_model: string | null;
  /** JSON list. */
  required_tags: string;
  notes: string | null;
  state: string;
  printer: string | null;
  printer_job_id: string | null;
  printer_path: string | null;
  origin: "user" | "printer";
  taken_over_by: string | null;
  progress: number | null;
  remaining_s: number | null;
  reason: string | null;
  uploaded_at: number | null;
  start_requested_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface JobHistoryTable {
  job_id: string;
  /** 1, 2, ... per job. */
  seq: number;
  /** null: the job was created in `to_state`. */
  from_state: string | null;
  to_state: string;
  actor: string;
  at: number;
  reason: string | null;
}

export interface PrinterFarmStateTable {
  printer: string;
  /** 1: known to be clear. */
  bed_clear: number;
  bed_changed_by: string | null;
  bed_changed_at: number | null;
  /** Why the printer is in maintenance; null: it is not. */
  maintenance: string | null;
  maintenance_by: string | null;
  maintenance_at: number | null;
  /** The node whose worker drives the printer, until `lease_until`. */
  lease_holder: string | null;
  lease_until: number | null;
  /** 1: a heater was far below its target when the driving node last looked (max_heating). */
  heating: number;
  updated_at: number;
}

/** A user's own notification settings (src/store/notification-settings.ts). */
export interface NotificationSettingsTable {
  user_id: string;
  /** 0: the user switched their notifications off. */
  enabled: number;
  /** Where their e-mail goes; null: none. */
  email: string | null;
  updated_at: number;
}

export interface Schema {
  devices: DevicesTable;
  events: EventsTable;
  events_pruned: EventsPrunedTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  tasks: TasksTable;
  task_queues: TaskQueuesTable;
  device_states: DeviceStatesTable;
  deliveries: DeliveriesTable;
  paused_syncs: PausedSyncsTable;
  library_files: LibraryFilesTable;
  jobs: JobsTable;
  job_history: JobHistoryTable;
  printer_farm_state: PrinterFarmStateTable;
  notification_settings: NotificationSettingsTable;
}
