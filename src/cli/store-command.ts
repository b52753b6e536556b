/**
 * `ferry store check` and `ferry store reset`: look at the store (SQLite in data_dir, or PostgreSQL
 * by DATABASE_URL), and set a damaged SQLite store aside so that Ferry can start a fresh one.
 */
import { createInterface } from "node:readline/promises";
import { join } from "node:path";
import { checkStore } from "../store/check.ts";
import { STORE_CONTENTS } from "../store/corrupt.ts";
import { setStoreAside } from "../store/set-aside.ts";
import { redactUrl } from "../store/store.ts";
import { EXIT, UsageError } from "./exit.ts";
import { acquireRunLock, LockedError } from "./run-lock.ts";
import { loadOrExit } from "./sync-command.ts";

export interface StoreCheckOptions {
  config?: string;
  quick?: boolean;
  json?: boolean;
}

/** 0 the store is whole (or not there yet), 1 it is damaged or cannot be reached, 2 bad config. */
export async function storeCheckCommand(options: StoreCheckOptions): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const result = await checkStore({
    dataDir: config.dataDir,
    databaseUrl: process.env.DATABASE_URL,
    ...(options.quick ? { quick: true } : {}),
  });
  if (options.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  } else if (result.ok) {
    process.stdout.write(`${result.location}: ${result.findings.join("\n  ")}\n`);
  } else {
    const what = options.quick ? "quick_check" : "integrity_check";
    const lines = [`${result.location}: damaged (${what}):`, ...result.findings.map((f) => `  ${f}`)];
    if (!process.env.DATABASE_URL?.trim()) {
      lines.push(
        STORE_CONTENTS,
        "`ferry store reset` moves it aside (never deletes it); a fresh store is created on the next run.",
      );
    }
    process.stderr.write(lines.join("\n") + "\n");
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

export interface StoreResetOptions {
  config?: string;
  yes?: boolean;
}

/** 0 moved aside (or nothing to move), 1 refused (another run holds the store, or PostgreSQL), 2 usage. */
export async function storeResetCommand(options: StoreResetOptions): Promise<number> {
  const config = await loadOrExit(options.config);
  if (typeof config === "number") return config;
  const url = process.env.DATABASE_URL?.trim();
  if (url) {
    process.stderr.write(
      `ferry: the store is the PostgreSQL database ${redactUrl(url)} (DATABASE_URL), which other nodes may share; ` +
        "ferry store reset only sets a SQLite file aside. Check it with `ferry store check` and repair it with PostgreSQL's tools.\n",
    );
    return EXIT.failed;
  }
  const file = join(config.dataDir, "ferry.db");
  const check = await checkStore({ dataDir: config.dataDir });
  if (check.findings[0]?.startsWith("no store yet")) {
    process.stdout.write(`${file}: no store here; nothing to reset\n`);
    return EXIT.ok;
  }
  let lock;
  try {
    lock = await acquireRunLock(config.dataDir, "store reset");
  } catch (error) {
    if (!(error instanceof LockedError)) throw error;
    process.stderr.write(`ferry: ${error.message}; stop it before resetting the store\n`);
    return EXIT.failed;
  }
  try {
    const state = check.ok ? "passes SQLite's integrity check" : "is damaged";
    const question = [
      `${file} ${state}.`,
      STORE_CONTENTS,
      `Move it aside to ${file}.corrupt-<time> (kept, not deleted) and start a fresh store?`,
    ].join("\n");
    if (!options.yes) {
      if (!process.stdin.isTTY) {
        process.stderr.write(question + "\n");
        throw new UsageError("ferry store reset asks first: run it on a terminal, or pass --yes");
      }
      if (!(await confirm(question))) {
        process.stdout.write("nothing changed\n");
        return EXIT.ok;
      }
    }
    const moved = await setStoreAside(config.dataDir);
    process.stdout.write(
      `moved ${moved.map((m) => m.slice(config.dataDir.length + 1)).join(", ")} aside in ${config.dataDir}; ` +
        "a fresh store is created on the next run\n",
    );
    return EXIT.ok;
  } finally {
    await lock.release();
  }
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await prompt.question(`${question} [y/N] `)).trim());
  } finally {
    prompt.close();
  }
}
