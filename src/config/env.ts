/**
 * `${VAR}` in string values, from the process environment first and then from the `.env` file next
 * to the config; `$${` stands for a literal `${`. Values that came from variables are remembered so
 * that they can be masked out of every message (passwords usually arrive this way).
 */
import { parseEnv } from "node:util";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigSource } from "./source.ts";

const REFERENCE = /\$\$\{|\$\{([^}]*)(\})?/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Shorter values are not masked: they would garble ordinary words and numbers in messages. */
const MIN_MASKED_LENGTH = 4;

export interface Substitution {
  variable: string;
  value: string;
}

export type Lookup = (name: string) => string | undefined;

/** Variables of a `.env` file (KEY=value lines, `#` comments, quotes), as Node reads them. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseEnv(text))) if (value !== undefined) out[key] = value;
  return out;
}

export function envLookup(env: NodeJS.ProcessEnv, dotenv: Readonly<Record<string, string>>): Lookup {
  return (name) => env[name] ?? (Object.hasOwn(dotenv, name) ? dotenv[name] : undefined);
}

export interface Expansion {
  value: string;
  used: Substitution[];
  /** Messages about references that could not be replaced. */
  errors: string[];
}

/** Replaces every `${NAME}` in `text`; `$${` gives `${`. */
export function expand(text: string, lookup: Lookup): Expansion {
  const used: Substitution[] = [];
  const errors: string[] = [];
  const value = text.replace(REFERENCE, (match, name: string | undefined, close: string | undefined) => {
    if (match === "$${") return "${";
    if (close === undefined) {
      errors.push(`"\${" without a closing "}" (write "$\${" for a literal "\${")`);
      return match;
    }
    if (name === undefined || !NAME.test(name)) {
      errors.push(`"${match}" is not a variable reference: use \${NAME} with letters, digits and _`);
      return match;
    }
    const found = lookup(name);
    if (found === undefined) {
      errors.push(`environment variable ${name} is not set (nor in .env next to the config)`);
      return match;
    }
    used.push({ variable: name, value: found });
    return found;
  });
  return { value, used, errors };
}

/**
 * Expands variables in every string value of the document, in place. Problems go to `problems`;
 * the fields that had one are returned so that later checks do not report them again.
 */
export function substituteDocument(
  source: ConfigSource,
  lookup: Lookup,
  problems: ConfigProblem[],
): { used: Substitution[]; failed: PropertyKey[][] } {
  const used: Substitution[] = [];
  const failed: PropertyKey[][] = [];
  source.walk((node, path) => {
    const text = node.value as string;
    if (!text.includes("${")) return;
    const result = expand(text, lookup);
    used.push(...result.used);
    if (result.errors.length > 0) {
      failed.push([...path]);
      for (const message of result.errors) problems.push(source.problem(path, message, { node }));
    } else {
      node.value = result.value;
    }
  }, problems);
  return { used, failed };
}

/** Replaces every substituted value in `message` with the `${NAME}` it came from. */
export function maskSubstitutions(message: string, used: readonly Substitution[]): string {
  let out = message;
  // Longest first, so that a value containing another is masked whole.
  const sorted = [...used].sort((a, b) => b.value.length - a.value.length);
  for (const { variable, value } of sorted) {
    if (value.length >= MIN_MASKED_LENGTH) out = out.split(value).join(`\${${variable}}`);
  }
  return out;
}
