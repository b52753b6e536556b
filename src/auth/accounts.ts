/**
 * Users, browser sessions and API tokens, kept in the store (migration 0003_users) on SQLite and
 * PostgreSQL alike. Secrets never leave this file but once: a new session's cookie value and a new
 * token, returned to the one caller that shows them. What is kept is their digest (secrets.ts)
 * and the argon2id hash of passwords (passwords.ts).
 *
 * Rules kept here, whoever calls (the API or the CLI): names are unique; the last enabled admin
 * cannot be removed, demoted or disabled; a token's role is at most its owner's, and what a token
 * may do is bounded by its owner's role at the time of use; a disabled or removed user's
 * sessions and tokens stop working at once.
 */
import { randomUUID } from "node:crypto";
import { sql, type Kysely, type Transaction } from "kysely";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { FerryError } from "../core/errors.ts";
import type { Store } from "../store/handle.ts";
import type { Schema } from "../store/schema.ts";
import { checkPassword, decoyHash, hashPassword, verifyPassword } from "./passwords.ts";
import { lowerRole, roleAllows, type Role } from "./roles.ts";
import { digest, formatApiToken, newTokenId, parseApiToken, randomSecret, sameSecret } from "./secrets.ts";

/** User and token names: a letter or digit first, then letters, digits, `_`, `.`, `-`; at most 64. */
export const ACCOUNT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** How long a browser session lasts from sign-in. */
export const SESSION_TTL_MS = 7 * 24 * 3600_000;
/** A token's `last used` is written at most this often (not a write per request). */
const LAST_USED_STEP_MS = 60_000;
/** Key of the PostgreSQL transaction lock that serializes changes to who is an admin. */
const PG_ACCOUNTS_LOCK = 0x6665_7275; // "feru"

export interface User {
  id: string;
  name: string;
  role: Role;
  disabled: boolean;
  /** False: the user signs in with API tokens only, or through the identity provider. */
  hasPassword: boolean;
  /** Signs in through the identity provider (OIDC), whose claim sets the role at each sign-in. */
  external: boolean;
  createdAt: number;
}

export interface ApiToken {
  id: string;
  name: string;
  /** The owner's name. */
  user: string;
  role: Role;
  createdAt: number;
  /** null: never. */
  expiresAt: number | null;
  lastUsedAt: number | null;
}

/** Who a request comes from, and what it may do. */
export interface Identity {
  user: User;
  /** The role the request acts with: the user's, or for a token the lower of token and user. */
  role: Role;
  via: "session" | "token";
  /** The token's id, when via a token. */
  tokenId?: string;
}

export interface NewUser {
  name: string;
  role: Role;
  /** Absent: the user signs in with API tokens only. */
  password?: string;
}

export interface UserChanges {
  role?: Role;
  password?: string;
  disabled?: boolean;
}

/** Who the identity provider says signs in, and the role its claim maps to (undefined: none). */
export interface ExternalSignIn {
  /** The provider's issuer URL and the user's `sub` there: the identity, whatever the name. */
  issuer: string;
  subject: string;
  /** The Ferry name for a first sign-in (later ones keep the name the user has). */
  name: string;
  role: Role | undefined;
}

/** A new browser session: its secret is the cookie's value, never stored. */
export interface SignedIn {
  user: User;
  secret: string;
  expiresAt: number;
}

export interface NewToken {
  /** The owner's name. */
  user: string;
  name: string;
  role: Role;
  /** ms since the epoch; null: never. */
  expiresAt: number | null;
}

type UserRow = Pick<
  Schema["users"],
  "id" | "name" | "role" | "disabled" | "password_hash" | "external_subject" | "created_at"
>;

const USER_COLUMNS = [
  "id",
  "name",
  "role",
  "disabled",
  "password_hash",
  "external_subject",
  "created_at",
] as const;

export class Accounts {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
  }

  async listUsers(): Promise<User[]> {
    const rows = await this.#store.db.selectFrom("users").select(USER_COLUMNS).orderBy("name").execute();
    return rows.map(toUser);
  }

  async getUser(name: string): Promise<User | undefined> {
    const row = await this.#userRow(name);
    return row && toUser(row);
  }

  /** True when an enabled admin exists (else the server offers its first-start setup). */
  async hasAdmin(): Promise<boolean> {
    const row = await this.#store.db
      .selectFrom("users")
      .select("id")
      .where("role", "=", "admin")
      .where("disabled", "=", 0)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Adds a user; EXISTS when the name is taken. */
  async addUser(user: NewUser): Promise<User> {
    checkName(user.name, "name");
    const hash = user.password === undefined ? null : await hashChecked(user.password);
    return this.#transaction(async (trx) => this.#insertUser(trx, user, hash));
  }

  /**
   * Adds the first admin, only while there is no enabled admin (first start); undefined when
   * one exists already, so that a setup link or FERRY_ADMIN_PASSWORD works once and never again.
   */
  async addFirstAdmin(name: string, password: string): Promise<User | undefined> {
    checkName(name, "name");
    const hash = await hashChecked(password);
    return this.#transaction(async (trx) => {
      if (await adminCount(trx)) return undefined;
      return this.#insertUser(trx, { name, role: "admin" }, hash);
    });
  }

  /** Changes a user's role, password or disabled flag; NOT_FOUND, or CONFLICT for the last admin. */
  async updateUser(name: string, changes: UserChanges): Promise<User> {
    const hash = changes.password === undefined ? undefined : await hashChecked(changes.password);
    return this.#transaction(async (trx) => {
      const row = await userRowIn(trx, name);
      if (!row) throw notFound(name);
      if (row.external_subject !== null && (changes.role !== undefined || hash !== undefined))
        throw new FerryError(
          "CONFLICT",
          `"${name}" signs in through the identity provider: its role follows the provider's claim at each sign-in, and it has no password here`,
          { subject: changes.role === undefined ? "password" : "role" },
        );
      const losesAdmin =
        row.role === "admin" &&
        row.disabled === 0 &&
        ((changes.role !== undefined && changes.role !== "admin") || changes.disabled === true);
      if (losesAdmin && (await adminCount(trx)) <= 1)
        throw new FerryError("CONFLICT", `"${name}" is the last admin: make another admin first`, {
          subject: name,
        });
      const now = this.#clock.now();
      await trx
        .updateTable("users")
        .set({
          ...(changes.role === undefined ? {} : { role: changes.role }),
          ...(hash === undefined ? {} : { password_hash: hash }),
          ...(changes.disabled === undefined ? {} : { disabled: changes.disabled ? 1 : 0 }),
          updated_at: now,
        })
        .where("id", "=", row.id)
        .execute();
      // A new password or a disabled account signs every browser out.
      if (hash !== undefined || changes.disabled === true)
        await trx.deleteFrom("sessions").where("user_id", "=", row.id).execute();
      const updated = await userRowIn(trx, name);
      if (!updated) throw notFound(name);
      return toUser(updated);
    });
  }

  /** Removes a user with its sessions and tokens; NOT_FOUND, or CONFLICT for the last admin. */
  async removeUser(name: string): Promise<void> {
    await this.#transaction(async (trx) => {
      const row = await userRowIn(trx, name);
      if (!row) throw notFound(name);
      if (row.role === "admin" && row.disabled === 0 && (await adminCount(trx)) <= 1)
        throw new FerryError("CONFLICT", `"${name}" is the last admin: make another admin first`, {
          subject: name,
        });
      // Explicitly, not only by the foreign keys' cascade: SQLite enforces those only when told.
      await trx.deleteFrom("sessions").where("user_id", "=", row.id).execute();
      await trx.deleteFrom("api_tokens").where("user_id", "=", row.id).execute();
      await trx.deleteFrom("users").where("id", "=", row.id).execute();
    });
  }

  /**
   * Signs a user in: the new session's secret (the cookie's value, never stored) and its expiry;
   * undefined for an unknown user, a wrong password, a disabled user or one without a password,
   * all alike and in about the same time.
   */
  async signIn(name: string, password: string): Promise<SignedIn | undefined> {
    const user = await this.passwordIdentity(name, password);
    return user && this.#openSession(this.#store.db, user);
  }

  /**
   * The user whose name and password these are, without opening a session (protocols that keep
   * their own, such as OPC UA); undefined as for signIn, all alike and in about the same time.
   */
  async passwordIdentity(name: string, password: string): Promise<User | undefined> {
    const row = ACCOUNT_NAME_PATTERN.test(name) ? await this.#userRow(name) : undefined;
    const stored = row?.password_hash ?? (await decoyHash());
    const matches = await verifyPassword(stored, password);
    if (!row || row.password_hash === null || !matches || row.disabled !== 0) return undefined;
    return toUser(row);
  }

  /**
   * Signs in a user the identity provider vouched for: the first time, adds them (no password;
   * EXISTS when a user of that name is not them); later, sets their role to what the claim says
   * now. Refused (PERMISSION) when the claim maps to no role, which also ends their sessions, or
   * when they are disabled; CONFLICT when the claim would demote the last admin.
   */
  async signInExternal(who: ExternalSignIn): Promise<SignedIn> {
    // A refusal is returned, not thrown, so that the sessions it ends stay ended.
    const result = await this.#transaction(async (trx): Promise<SignedIn | FerryError> => {
      const row = await trx
        .selectFrom("users")
        .select(USER_COLUMNS)
        .where("external_issuer", "=", who.issuer)
        .where("external_subject", "=", who.subject)
        .executeTakeFirst();
      if (who.role === undefined) {
        if (row) await trx.deleteFrom("sessions").where("user_id", "=", row.id).execute();
        return new FerryError("PERMISSION", "the identity provider's claim gives no Ferry role", {
          subject: row?.name ?? who.name,
        });
      }
      if (!row) {
        checkName(who.name, "name");
        const user = await this.#insertUser(trx, { name: who.name, role: who.role }, null, who);
        return this.#openSession(trx, user);
      }
      if (row.disabled !== 0)
        throw new FerryError("PERMISSION", `"${row.name}" is disabled in Ferry`, { subject: row.name });
      if (row.role !== who.role) {
        if (row.role === "admin" && (await adminCount(trx)) <= 1)
          throw new FerryError(
            "CONFLICT",
            `"${row.name}" is the last admin and the identity provider now gives ${who.role}: make another admin first`,
            { subject: row.name },
          );
        await trx
          .updateTable("users")
          .set({ role: who.role, updated_at: this.#clock.now() })
          .where("id", "=", row.id)
          .execute();
      }
      return this.#openSession(trx, toUser({ ...row, role: who.role }));
    });
    if (result instanceof FerryError) throw result;
    return result;
  }

  /** The one way a session starts, whichever way the user proved who they are. */
  async #openSession(db: Kysely<Schema>, user: User): Promise<SignedIn> {
    const now = this.#clock.now();
    const secret = randomSecret();
    const expiresAt = now + SESSION_TTL_MS;
    await db.deleteFrom("sessions").where("expires_at", "<=", now).execute();
    await db
      .insertInto("sessions")
      .values({ id_hash: digest(secret), user_id: user.id, created_at: now, expires_at: expiresAt })
      .execute();
    return { user, secret, expiresAt };
  }

  /** The identity of a session cookie's value; undefined when unknown, expired or its user disabled. */
  async sessionIdentity(secret: string): Promise<Identity | undefined> {
    const row = await this.#store.db
      .selectFrom("sessions")
      .innerJoin("users", "users.id", "sessions.user_id")
      .select(["sessions.expires_at", ...USER_COLUMNS.map((c) => `users.${c}` as const)])
      .where("sessions.id_hash", "=", digest(secret))
      .executeTakeFirst();
    if (!row || row.expires_at <= this.#clock.now() || row.disabled !== 0) return undefined;
    const user = toUser(row);
    return { user, role: user.role, via: "session" };
  }

  /** Ends a session (signing out); nothing when there is none. */
  async endSession(secret: string): Promise<void> {
    await this.#store.db.deleteFrom("sessions").where("id_hash", "=", digest(secret)).execute();
  }

  /**
   * Creates an API token; `secret` is the whole token, shown once and never again. PERMISSION when
   * the role is above the owner's, EXISTS when the owner has a token of that name.
   */
  async createToken(token: NewToken): Promise<{ token: ApiToken; secret: string }> {
    checkName(token.name, "name");
    return this.#transaction(async (trx) => {
      const owner = await userRowIn(trx, token.user);
      if (!owner) throw notFound(token.user);
      if (!roleAllows(owner.role, token.role))
        throw new FerryError(
          "PERMISSION",
          `a token of "${owner.name}" (${owner.role}) cannot have the role ${token.role}`,
          { subject: "role" },
        );
      const taken = await trx
        .selectFrom("api_tokens")
        .select("id")
        .where("user_id", "=", owner.id)
        .where("name", "=", token.name)
        .executeTakeFirst();
      if (taken)
        throw new FerryError("EXISTS", `"${owner.name}" already has a token named "${token.name}"`, {
          subject: "name",
        });
      const id = newTokenId();
      const secret = randomSecret();
      const now = this.#clock.now();
      await trx
        .insertInto("api_tokens")
        .values({
          id,
          user_id: owner.id,
          name: token.name,
          role: token.role,
          secret_hash: digest(secret),
          created_at: now,
          expires_at: token.expiresAt,
          last_used_at: null,
        })
        .execute();
      return {
        token: {
          id,
          name: token.name,
          user: owner.name,
          role: token.role,
          createdAt: now,
          expiresAt: token.expiresAt,
          lastUsedAt: null,
        },
        secret: formatApiToken(id, secret),
      };
    });
  }

  /** Tokens, newest first: of one user, or of everyone. Expired ones are listed (and say so by their date). */
  async listTokens(user?: string): Promise<ApiToken[]> {
    let query = this.#tokenQuery();
    if (user !== undefined) query = query.where("users.name", "=", user);
    const rows = await query.orderBy("api_tokens.created_at", "desc").orderBy("api_tokens.id").execute();
    return rows.map(toToken);
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const row = await this.#tokenQuery().where("api_tokens.id", "=", id).executeTakeFirst();
    return row && toToken(row);
  }

  /** Revokes (deletes) a token; false when there was none. */
  async revokeToken(id: string): Promise<boolean> {
    const result = await this.#store.db.deleteFrom("api_tokens").where("id", "=", id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** The identity of a bearer token; undefined when malformed, unknown, revoked, expired or its user disabled. */
  async tokenIdentity(text: string): Promise<Identity | undefined> {
    const parsed = parseApiToken(text);
    if (!parsed) return undefined;
    const row = await this.#store.db
      .selectFrom("api_tokens")
      .innerJoin("users", "users.id", "api_tokens.user_id")
      .select([
        "api_tokens.id as token_id",
        "api_tokens.role as token_role",
        "api_tokens.secret_hash",
        "api_tokens.expires_at",
        "api_tokens.last_used_at",
        ...USER_COLUMNS.map((c) => `users.${c}` as const),
      ])
      .where("api_tokens.id", "=", parsed.id)
      .executeTakeFirst();
    const now = this.#clock.now();
    if (!row || !sameSecret(row.secret_hash, digest(parsed.secret))) return undefined;
    if ((row.expires_at !== null && row.expires_at <= now) || row.disabled !== 0) return undefined;
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_STEP_MS)
      await this.#store.db
        .updateTable("api_tokens")
        .set({ last_used_at: now })
        .where("id", "=", row.token_id)
        .execute();
    const user = toUser(row);
    return { user, role: lowerRole(row.token_role, user.role), via: "token", tokenId: row.token_id };
  }

  #tokenQuery() {
    return this.#store.db
      .selectFrom("api_tokens")
      .innerJoin("users", "users.id", "api_tokens.user_id")
      .select([
        "api_tokens.id",
        "api_tokens.name",
        "users.name as user",
        "api_tokens.role",
        "api_tokens.created_at",
        "api_tokens.expires_at",
        "api_tokens.last_used_at",
      ]);
  }

  #userRow(name: string): Promise<UserRow | undefined> {
    return this.#store.db
      .selectFrom("users")
      .select(USER_COLUMNS)
      .where("name", "=", name)
      .executeTakeFirst();
  }

  async #insertUser(
    trx: Transaction<Schema>,
    user: NewUser,
    hash: string | null,
    external?: { issuer: string; subject: string },
  ): Promise<User> {
    if (await userRowIn(trx, user.name))
      throw new FerryError(
        "EXISTS",
        external
          ? `a user named "${user.name}" exists already in Ferry and is not this identity provider's user: it signs in once an admin removes that one`
          : `a user named "${user.name}" exists already`,
        { subject: "name" },
      );
    const now = this.#clock.now();
    const row: UserRow = {
      id: randomUUID(),
      name: user.name,
      role: user.role,
      password_hash: hash,
      external_subject: external?.subject ?? null,
      disabled: 0,
      created_at: now,
    };
    await trx
      .insertInto("users")
      .values({ ...row, external_issuer: external?.issuer ?? null, updated_at: now })
      .execute();
    return toUser(row);
  }

  /**
   * Changes to users run one at a time across processes and nodes, so two admins removing each
   * other at once cannot leave none: SQLite's transactions take the write lock at begin
   * (store.ts), PostgreSQL's take a transaction lock here.
   */
  #transaction<T>(work: (trx: Transaction<Schema>) => Promise<T>): Promise<T> {
    return this.#store.db.transaction().execute(async (trx) => {
      if (this.#store.dialect === "postgres")
        await sql`select pg_advisory_xact_lock(${PG_ACCOUNTS_LOCK})`.execute(trx);
      return work(trx);
    });
  }
}

function userRowIn(trx: Transaction<Schema>, name: string): Promise<UserRow | undefined> {
  return trx.selectFrom("users").select(USER_COLUMNS).where("name", "=", name).executeTakeFirst();
}

async function adminCount(trx: Transaction<Schema>): Promise<number> {
  const row = await trx
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("role", "=", "admin")
    .where("disabled", "=", 0)
    .executeTakeFirstOrThrow();
  return row.n;
}

async function hashChecked(password: string): Promise<string> {
  checkPassword(password);
  return hashPassword(password);
}

function checkName(name: string, field: string): void {
  if (!ACCOUNT_NAME_PATTERN.test(name))
    throw new FerryError(
      "NAME_INVALID",
      `${field} "${name}" must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit`,
      { subject: field },
    );
}

function notFound(name: string): FerryError {
  return new FerryError("NOT_FOUND", `no user named "${name}"`, { subject: name });
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    disabled: row.disabled !== 0,
    hasPassword: row.password_hash !== null,
    external: row.external_subject !== null,
    createdAt: row.created_at,
  };
}

function toToken(row: {
  id: string;
  name: string;
  user: string;
  role: Role;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}): ApiToken {
  return {
    id: row.id,
    name: row.name,
    user: row.user,
    role: row.role,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
  };
}
