/**
 * An open store, in its own file so that what the store opens with (deliveries' import of old
 * delivery files) can take a store without importing store.ts back.
 */
import type { Kysely } from "kysely";
import type { Schema } from "./schema.ts";

export interface Store {
  db: Kysely<Schema>;
  dialect: "sqlite" | "postgres";
  /** The database file, or the URL without its password: for messages. */
  location: string;
  close(): Promise<void>;
}
