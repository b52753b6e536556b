/**
 * `data_dir` must be a folder, or not exist yet (Ferry creates it on first use). A file in its place
 * would otherwise surface later as a confusing mkdir or SQLite error, after devices were contacted.
 */
import { statSync } from "node:fs";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigSource } from "./source.ts";

/** A problem when `dataDir` (absolute) exists and is not a folder, or lies under a file. */
export function checkDataDir(
  dataDir: string,
  written: string | undefined,
  source: ConfigSource,
): ConfigProblem | undefined {
  let message: string | undefined;
  try {
    if (!statSync(dataDir).isDirectory()) message = `${dataDir} is a file, not a folder`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") message = `${dataDir} lies under a file, not a folder`;
    // Absent (created on first use) or unreadable (the store will say why when it opens).
  }
  if (message === undefined) return undefined;
  const hint = "; data_dir holds Ferry's store (ferry.db) and must be a folder or not exist yet";
  return written === undefined
    ? { path: "data_dir", message: `${message} (data_dir is not set: the default is ./ferry-data)${hint}` }
    : source.problem(["data_dir"], `${message}${hint}`);
}
