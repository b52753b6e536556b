/** Problems found in a config file, all reported at once with the line they are on. */
import { isAbsolute, relative, resolve, sep } from "node:path";

export interface ConfigProblem {
  /** The field, e.g. "devices.mk4-a.url" or "groups.farm[1]"; "" for the file as a whole. */
  path: string;
  /** 1-based, when the problem has a place in the file. */
  line?: number;
  /** 1-based. */
  column?: number;
  message: string;
}

/** Problems without a line (the file as a whole) first, then by position; stable otherwise. */
function byPosition(a: ConfigProblem, b: ConfigProblem): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  const where = problem.line === undefined ? file : `${file}:${problem.line}:${problem.column ?? 1}`;
  return problem.path === ""
    ? `${where}: ${problem.message}`
    : `${where} ${problem.path}: ${problem.message}`;
}

/** The file as the user knows it: relative to the working folder when it lies within it. */
function shownName(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel !== "" && rel.split(sep)[0] !== ".." && !isAbsolute(rel) ? rel : file;
}

/** The message lists this many problems at most (a binary or huge file can have thousands): one screen. */
export const SHOWN_PROBLEMS = 20;

/**
 * A config file that cannot be used. `message` lists the problems, one per line (the first
 * SHOWN_PROBLEMS, then how many more; `problems` holds them all):
 *
 *     ferry.yaml: 2 problems
 *       ferry.yaml:3:14 devices.mk4-a.url: Invalid URL
 *       ferry.yaml:7:5 groups.farm[1]: unknown device "mk4-c"
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The config file, as it was given (the message shows it relative to the working folder when within it). */
  readonly file: string;
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    const sorted = [...problems].sort(byPosition);
    const count = `${sorted.length} problem${sorted.length === 1 ? "" : "s"}`;
    const shown = shownName(file);
    const lines = sorted.slice(0, SHOWN_PROBLEMS).map((p) => `  ${formatProblem(shown, p)}`);
    if (sorted.length > SHOWN_PROBLEMS) lines.push(`  … and ${sorted.length - SHOWN_PROBLEMS} more`);
    super([`${shown}: ${count}`, ...lines].join("\n"));
    this.file = file;
    this.problems = sorted;
  }
}
