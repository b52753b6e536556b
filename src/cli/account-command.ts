/**
 * `ferry user …` and `ferry token …`: the server's users and API tokens, straight in the store
 * (also while `ferry serve` runs). What the API allows an admin, from the machine's shell.
 */
import type { ApiToken, User } from "../auth/accounts.ts";
import type { Role } from "../auth/roles.ts";
import { parseDuration } from "../config/index.ts";
import { EXIT, UsageError } from "./exit.ts";
import { openConfiguredStore, type OpenedStore } from "./store-open.ts";
import { loadOrExit } from "./sync-command.ts";

export interface AccountOptions {
  config?: string;
  json?: boolean;
}

async function withStore(
  options: AccountOptions,
  work: (opened: OpenedStore) => Promise<number>,
): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const opened = await openConfiguredStore(config);
  try {
    return await work(opened);
  } finally {
    await opened.close();
  }
}

const out = (text: string) => process.stdout.write(text + "\n");
const note = (text: string) => process.stderr.write(`ferry: ${text}\n`);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The password from stdin: all of it, less one trailing newline (`echo pw | ferry user add …`). */
async function readPassword(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  const text = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (text === "") throw new UsageError("--password-stdin: stdin was empty");
  return text;
}

function userJson(user: User) {
  return {
    name: user.name,
    role: user.role,
    disabled: user.disabled,
    hasPassword: user.hasPassword,
    external: user.external,
    createdAt: iso(user.createdAt),
  };
}

function tokenJson(token: ApiToken) {
  return {
    id: token.id,
    name: token.name,
    user: token.user,
    role: token.role,
    createdAt: iso(token.createdAt),
    expiresAt: iso(token.expiresAt),
    lastUsedAt: iso(token.lastUsedAt),
  };
}

export function userAddCommand(
  name: string,
  options: AccountOptions & { role: Role; passwordStdin?: boolean },
): Promise<number> {
  return withStore(options, async ({ accounts }) => {
    const password = options.passwordStdin ? await readPassword() : undefined;
    const user = await accounts.addUser({
      name,
      role: options.role,
      ...(password === undefined ? {} : { password }),
    });
    if (options.json) out(JSON.stringify(userJson(user)));
    else
      out(
        `added ${user.name} (${user.role})${password === undefined ? "; no password: signs in with API tokens only (ferry token create … --user " + user.name + ")" : ""}`,
      );
    return EXIT.ok;
  });
}

export function userPasswordCommand(name: string, options: AccountOptions): Promise<number> {
  return withStore(options, async ({ accounts }) => {
    await accounts.updateUser(name, { password: await readPassword() });
    out(`new password for ${name}; their browser sessions have ended`);
    return EXIT.ok;
  });
}

export function userListCommand(options: AccountOptions): Promise<number> {
  return withStore(options, async ({ accounts }) => {
    const users = await accounts.listUsers();
    if (options.json) {
      out(JSON.stringify(users.map(userJson), null, 2));
      return EXIT.ok;
    }
    if (users.length === 0) out("no users yet (ferry user add NAME --role admin --password-stdin)");
    for (const user of users)
      out(
        `${user.name.padEnd(20)} ${user.role.padEnd(9)} ${user.disabled ? "disabled" : "enabled "} ${user.external ? "identity provider" : user.hasPassword ? "password" : "tokens only"}`,
      );
    return EXIT.ok;
  });
}

export function userRemoveCommand(name: string, options: AccountOptions): Promise<number> {
  return withStore(options, async ({ accounts }) => {
    await accounts.removeUser(name);
    out(`removed ${name} with their sessions and tokens`);
    return EXIT.ok;
  });
}

export function tokenCreateCommand(
  name: string,
  options: AccountOptions & { role?: Role; user?: string; expires: string },
): Promise<number> {
  const { expires } = options;
  const seconds = expires === "never" ? undefined : parseDuration(expires);
  if (expires !== "never" && (seconds === undefined || seconds <= 0))
    throw new UsageError(`--expires: expected a duration such as 30d or 12h, or "never", got "${expires}"`);
  return withStore(options, async ({ accounts }) => {
    const owner = options.user ?? "admin";
    const user = await accounts.getUser(owner);
    if (!user)
      throw new UsageError(
        `no user named "${owner}"${options.user === undefined ? "; name the token's owner with --user" : ""}`,
      );
    const { token, secret } = await accounts.createToken({
      user: owner,
      name,
      role: options.role ?? user.role,
      expiresAt: seconds === undefined ? null : Date.now() + seconds * 1000,
    });
    // The token alone on stdout, so that TOKEN=$(ferry token create …) works; it is never shown again.
    if (options.json) out(JSON.stringify({ token: tokenJson(token), secret }));
    else out(secret);
    note(
      `token ${token.id} "${token.name}" of ${token.user} (${token.role}), ${token.expiresAt === null ? "never expires" : `expires ${new Date(token.expiresAt).toISOString()}`}; it is shown this once`,
    );
    return EXIT.ok;
  });
}

export function tokenListCommand(options: AccountOptions & { user?: string }): Promise<number> {
  return withStore(options, async ({ accounts }) => {
    const tokens = await accounts.listTokens(options.user);
    if (options.json) {
      out(JSON.stringify(tokens.map(tokenJson), null, 2));
      return EXIT.ok;
    }
    if (tokens.length === 0) out("no tokens");
    const now = Date.now();
    for (const token of tokens) {
      const expiry =
        token.expiresAt === null
          ? "never expires"
          : token.expiresAt <= now
            ? "expired"
            : `expires ${new Date(token.expiresAt).toISOString().slice(0, 10)}`;
      out(`${token.id}  ${token.name.padEnd(16)} ${token.user.padEnd(16)} ${token.role.padEnd(9)} ${expiry}`);
    }
    return EXIT.ok;
  });
}

export function tokenRevokeCommand(ids: string[], options: AccountOptions): Promise<number> {
  return withStore(options, async ({ accounts }) => {
    let code: number = EXIT.ok;
    for (const id of ids) {
      if (await accounts.revokeToken(id)) out(`revoked ${id}`);
      else {
        note(`no token ${id} (ferry token list shows the ids)`);
        code = EXIT.failed;
      }
    }
    return code;
  });
}
