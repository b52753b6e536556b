/**
 * Each user's own notification settings: whether they want notifications at all, and the address
 * their e-mail goes to. A user without a row has them on and no address.
 */
import type { Store } from "./store.ts";

export interface NotificationSettings {
  user: string;
  enabled: boolean;
  email: string | null;
  /** ms; null: never changed. */
  updatedAt: number | null;
}

export class NotificationSettingsStore {
  readonly #store: Store;
  readonly #clock: () => number;

  constructor(store: Store, options: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
  }

  /** The settings of these users (by name); users who do not exist are left out. */
  async of(names: readonly string[]): Promise<Map<string, NotificationSettings>> {
    if (names.length === 0) return new Map();
    const rows = await this.#store.db
      .selectFrom("users")
      .leftJoin("notification_settings", "notification_settings.user_id", "users.id")
      .select([
        "users.name as name",
        "users.disabled as disabled",
        "notification_settings.enabled as enabled",
        "notification_settings.email as email",
        "notification_settings.updated_at as updated_at",
      ])
      .where("users.name", "in", [...names])
      .execute();
    return new Map(rows.map((r) => [r.name, view(r)]));
  }

  /** The names of the users of a role who are not disabled. */
  async usersWithRole(role: "viewer" | "user" | "operator" | "admin"): Promise<string[]> {
    const rows = await this.#store.db
      .selectFrom("users")
      .select("name")
      .where("role", "=", role)
      .where("disabled", "=", 0)
      .orderBy("name")
      .execute();
    return rows.map((r) => r.name);
  }

  async get(user: string): Promise<NotificationSettings | undefined> {
    return (await this.of([user])).get(user);
  }

  /** Changes what is given, keeps the rest; undefined when the user does not exist. */
  async set(
    user: string,
    changes: { enabled?: boolean; email?: string | null },
  ): Promise<NotificationSettings | undefined> {
    const now = this.#clock();
    const done = await this.#store.db.transaction().execute(async (trx) => {
      const found = await trx.selectFrom("users").select("id").where("name", "=", user).executeTakeFirst();
      if (!found) return false;
      const current = await trx
        .selectFrom("notification_settings")
        .select(["enabled", "email"])
        .where("user_id", "=", found.id)
        .executeTakeFirst();
      const row = {
        user_id: found.id,
        enabled: changes.enabled === undefined ? (current?.enabled ?? 1) : changes.enabled ? 1 : 0,
        email: changes.email === undefined ? (current?.email ?? null) : changes.email,
        updated_at: now,
      };
      await trx
        .insertInto("notification_settings")
        .values(row)
        .onConflict((oc) =>
          oc.column("user_id").doUpdateSet({ enabled: row.enabled, email: row.email, updated_at: now }),
        )
        .execute();
      return true;
    });
    return done ? this.get(user) : undefined;
  }
}

function view(r: {
  name: string;
  disabled: number;
  enabled: number | null;
  email: string | null;
  updated_at: number | null;
}): NotificationSettings {
  return {
    user: r.name,
    // A disabled user hears nothing either.
    enabled: r.disabled === 0 && (r.enabled ?? 1) === 1,
    email: r.email,
    updatedAt: r.updated_at,
  };
}
