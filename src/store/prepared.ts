/**
 * Queries compiled once and run again with new arguments. Kysely builds and compiles every query
 * anew (an object per column, clause and value, then a walk over them), which costs more than
 * SQLite takes to run a small one; a farm worker runs the same few queries for every printer every
 * interval (1,000 printers: thousands a second). On SQLite they run at once when the connection is
 * free, without Kysely's chain of promises around each (sqlite-kysely.ts, runNow).
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from "kysely";
import type { Schema } from "./schema.ts";
import { runNow } from "./sqlite-kysely.ts";

/** A stand-in for argument `i` while the query compiles; found again among its parameters. */
const placeholder = (i: number) => `\u0000ferry-argument-${i}\u0000`;

interface Compiled {
  query: CompiledQuery;
  /** For each parameter of the query: the argument it takes, or -1 for a constant of the query. */
  from: number[];
}

/**
 * `build` called with stand-ins for its arguments gives the query; what it returns runs the query
 * with the arguments given, compiled once per store (its transactions included). Arguments must
 * reach the query as bound parameters (as values in where, set and values clauses do), each at
 * least once.
 */
export function prepare<A extends readonly unknown[], R>(
  build: (db: Kysely<Schema>, ...args: A) => Compilable<R>,
): (db: Kysely<Schema>, ...args: A) => Promise<QueryResult<R>> {
  // By the executor's adapter, which a store's Kysely shares with its transactions: a query run in
  // a transaction is compiled once too (the SQL depends only on the dialect).
  const compiled = new WeakMap<object, Compiled>();
  const compile = (db: Kysely<Schema>, arity: number): Compiled => {
    const stand = Array.from({ length: arity }, (_, i) => placeholder(i));
    const query = build(db, ...(stand as unknown as A)).compile();
    const from = query.parameters.map((p) => stand.indexOf(p as string));
    for (let i = 0; i < arity; i++)
      if (!from.includes(i)) throw new Error(`prepare: argument ${i} is not a parameter of ${query.sql}`);
    return { query, from };
  };
  return async (db, ...args) => {
    const dialect = db.getExecutor().adapter;
    let prepared = compiled.get(dialect);
    if (!prepared) compiled.set(dialect, (prepared = compile(db, args.length)));
    const { query, from } = prepared;
    const parameters = from.map((arg, i) => (arg === -1 ? query.parameters[i] : args[arg]));
    const run = CompiledQuery.raw(query.sql, parameters);
    return runNow<R>(db, run) ?? (await db.executeQuery<R>(run));
  };
}
