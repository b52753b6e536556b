/**
 * A damaged SQLite store (`database disk image is malformed`, or a file that is not a database at
 * all) stops every command. The error says what the file holds, what starting over loses, and which
 * commands look at it and set it aside, instead of SQLite's one line.
 */
import type { Statement } from "better-sqlite3";
import type { SqliteStatement } from "kysely";
import { FerryError } from "../core/errors.ts";

/** SQLite's result codes for a damaged file (extended codes start with these). */
const CORRUPTION_CODES = ["SQLITE_CORRUPT", "SQLITE_NOTADB"];

export function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && CORRUPTION_CODES.some((c) => code === c || code.startsWith(`${c}_`));
}

/** What the store file holds and what deleting it loses: for the corruption error and `ferry store reset`. */
export const STORE_CONTENTS = [
  "It holds Ferry's memory of its work, not your files:",
  "  - delivery records: what Ferry sent where, so that unchanged files are not sent again;",
  "  - the task queue: changes waiting to be sent, with their checkpoints (how far each transfer got),",
  "    and dead tasks kept for `ferry tasks retry`;",
  "  - device states: which devices are online, offline or busy, and since when.",
  "Starting over loses that memory: the next run compares every source with its targets again",
  "(files on targets that cannot list, such as upload forms, are sent again), pending changes are",
  "planned again from a full scan, transfers in progress start from their first byte, and dead",
  "tasks are forgotten.",
].join("\n");

export class StoreCorruptError extends FerryError {
  constructor(file: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      "UNAVAILABLE",
      [
        `the store ${file} is damaged (SQLite: ${reason}).`,
        STORE_CONTENTS,
        "`ferry store check` shows the damage; `ferry store reset` moves the file aside (kept as",
        "ferry.db.corrupt-<time>, never deleted) and a fresh store is created on the next run.",
      ].join("\n"),
      { cause, subject: file, retryable: false },
    );
  }
}

/** `error` as a StoreCorruptError when it is SQLite's corruption, else unchanged. */
export function explainCorruption(error: unknown, file: string): unknown {
  return isCorruption(error) && !(error instanceof StoreCorruptError)
    ? new StoreCorruptError(file, error)
    : error;
}

/**
 * A statement whose corruption errors say what to do. Damage inside a table shows only when a
 * query reads the damaged page, long after the store opened.
 */
export function explainingStatement(statement: Statement, file: string): SqliteStatement {
  const explained =
    <A extends unknown[], R>(run: (...args: A) => R) =>
    (...args: A): R => {
      try {
        return run(...args);
      } catch (error) {
        throw explainCorruption(error, file);
      }
    };
  return {
    reader: statement.reader,
    all: explained((parameters: readonly unknown[]) => statement.all(parameters)),
    run: explained((parameters: readonly unknown[]) => statement.run(parameters)),
    // Rows read later, while iterating, can meet the damage too; Ferry never streams (store.ts).
    iterate: explained((parameters: readonly unknown[]) => statement.iterate(parameters)),
  };
}
