/**
 * The config file as a YAML document (JSON is YAML too), kept next to the data so that every problem
 * can name the line and column of the node it is about.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Scalar,
} from "yaml";
import type { ConfigProblem } from "./errors.ts";

export type FieldPath = readonly PropertyKey[];

const PLAIN_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** ["devices", "mk4-a", "url"] → "devices.mk4-a.url"; ["groups", "farm", 1] → "groups.farm[1]". */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "string" && PLAIN_KEY.test(segment))
      out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** `inner` is `outer` or lies under it. */
export function isUnder(inner: FieldPath, outer: FieldPath): boolean {
  return outer.length <= inner.length && outer.every((segment, i) => String(segment) === String(inner[i]));
}

export interface Located {
  range?: readonly number[] | null | undefined;
}

/**
 * The YAML parser quotes the offending text in some messages ('Unexpected scalar token in YAML
 * stream: "…"'): in a binary or garbled file that is kilobytes of noise, and in any file it may be a
 * secret. The line and column already say where.
 */
function withoutQuote(message: string): string {
  const quote = message.indexOf(': "');
  return quote < 0 ? message : message.slice(0, quote);
}

export class ConfigSource {
  readonly doc: Document;
  readonly #lines: LineCounter;

  constructor(text: string) {
    this.#lines = new LineCounter();
    // uniqueKeys: false because walk() reports duplicate keys itself, naming the key and its field.
    this.doc = parseDocument(text, {
      lineCounter: this.#lines,
      prettyErrors: false,
      uniqueKeys: false,
      logLevel: "error",
    });
  }

  /** Syntax errors, each at its line and column. Messages never quote the file's text. */
  syntaxProblems(): ConfigProblem[] {
    return this.doc.errors.map((error) => ({
      path: "",
      ...this.#position(error.pos[0]),
      message: withoutQuote(error.message),
    }));
  }

  /**
   * A problem placed at `options.node`, else at the node of `path` (or its key when `atKey`), else at
   * the nearest ancestor that exists.
   */
  problem(
    path: FieldPath,
    message: string,
    options: { atKey?: boolean; node?: Located } = {},
  ): ConfigProblem {
    const node = options.node ?? this.#locate(path, options.atKey === true);
    const offset = node?.range?.[0];
    return { path: formatPath(path), ...(offset === undefined ? {} : this.#position(offset)), message };
  }

  /** The plain data, or undefined (with a problem) when it cannot be built. */
  toJS(problems: ConfigProblem[]): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: 100 }) as unknown;
    } catch (error) {
      problems.push({ path: "", message: error instanceof Error ? error.message : String(error) });
      return undefined;
    }
  }

  /**
   * Visits every string scalar that is a value (not a key), with its field path, and reports keys
   * that are not plain scalars and keys that appear twice in one mapping. Aliases are not followed:
   * their anchor is visited where it is defined.
   */
  walk(visit: (node: Scalar, path: FieldPath) => void, problems: ConfigProblem[]): void {
    const go = (node: unknown, path: PropertyKey[]): void => {
      if (isScalar(node)) {
        if (typeof node.value === "string") visit(node, path);
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => {
          go(item, [...path, i]);
        });
      } else if (isMap(node)) {
        const seen = new Set<string>();
        for (const pair of node.items) {
          if (!isScalar(pair.key)) {
            problems.push(this.problem(path, "keys must be plain names, not lists or mappings"));
            continue;
          }
          const key = String(pair.key.value);
          if (seen.has(key)) {
            problems.push(this.problem([...path, key], `duplicate key "${key}"`, { node: pair.key }));
          }
          seen.add(key);
          go(pair.value, [...path, key]);
        }
      }
    };
    go(this.doc.contents, []);
  }

  #position(offset: number): { line: number; column: number } {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  /** The deepest node along `path` that exists (the key node of the last step when `atKey`). */
  #locate(path: FieldPath, atKey: boolean): Located | undefined {
    let node: unknown = this.doc.contents;
    let found: Located | undefined = node ?? undefined;
    for (const [i, segment] of path.entries()) {
      if (isAlias(node)) node = node.resolve(this.doc);
      let next: unknown;
      let key: unknown;
      if (isMap(node)) {
        // The last of duplicate keys wins, as in the data.
        const pair = node.items.findLast((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        key = pair?.key;
        next = pair?.value;
      } else if (isSeq(node) && typeof segment === "number") {
        next = node.items[segment];
      }
      if (atKey && i === path.length - 1 && key !== undefined) return key as Located;
      if (next === undefined || next === null) return found;
      node = next;
      found = next;
    }
    return found;
  }
}
