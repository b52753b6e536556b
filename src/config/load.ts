/**
 * Loading ferry.yaml (or .yml, or .json: JSON is YAML) once, into typed objects. Every problem in the
 * file is collected and thrown at once as a ConfigError, each with its field and line.
 */
import { readFile } from "node:fs/promises";
import { statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { z } from "zod";
import { checkDataDir } from "./data-dir.ts";
import { resolveLocalPath } from "./endpoints.ts";
import { envLookup, maskSubstitutions, parseDotenv, substituteDocument } from "./env.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { checkReferences } from "./references.ts";
import { buildSchema, DEFAULT_DATA_DIR, DEFAULT_MOVE_SETTLE_S, knownKeys, TOP_LEVEL_KEYS } from "./schema.ts";
import { notifyConfig } from "./notify.ts";
import { opcuaConfig } from "./opcua.ts";
import { serverConfig } from "./server.ts";
import { ConfigSource, isUnder, type FieldPath } from "./source.ts";
import type { DeviceKind, FerryConfig, LoadOptions, SyncConfig } from "./types.ts";

export const CONFIG_FILE_NAMES = ["ferry.yaml", "ferry.yml", "ferry.json"] as const;

/** The config file in `cwd`: ferry.yaml, ferry.yml or ferry.json, in that order; undefined if none. */
export function findConfigFile(cwd: string): string | undefined {
  for (const name of CONFIG_FILE_NAMES) {
    const path = join(cwd, name);
    try {
      if (statSync(path).isFile()) return path;
    } catch {
      // absent or unreadable: try the next name
    }
  }
  return undefined;
}

const errorCode = (error: unknown): string | undefined =>
  error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;

/** Reads `file` and the `.env` next to it, then validates (see parseConfig). Throws ConfigError. */
export async function loadConfig(file: string, options: LoadOptions): Promise<FerryConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = errorCode(error);
    const message =
      code === "ENOENT"
        ? "file not found"
        : code === "EISDIR"
          ? "is a folder, not a file"
          : `cannot read (${code ?? String(error)})`;
    throw new ConfigError(file, [{ path: "", message }]);
  }
  const envFile = join(dirname(resolve(file)), ".env");
  const problems: ConfigProblem[] = [];
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseDotenv(await readFile(envFile, "utf8"));
  } catch (error) {
    const code = errorCode(error);
    if (code !== "ENOENT")
      problems.push({ path: "", message: `cannot read ${envFile} (${code ?? String(error)})` });
  }
  return parse(text, file, { ...options, dotenv }, problems);
}

/**
 * Validates the text of a config file. Pure apart from resolving `file` against the working folder:
 * variables come from `options.env` (default process.env), then from `options.dotenv`.
 */
export function parseConfig(
  text: string,
  file: string,
  options: LoadOptions & { dotenv?: Record<string, string> },
): FerryConfig {
  return parse(text, file, options, []);
}

function parse(
  text: string,
  file: string,
  options: LoadOptions & { dotenv?: Record<string, string> },
  problems: ConfigProblem[],
): FerryConfig {
  const env = options.env ?? process.env;
  const baseDir = dirname(resolve(file));
  const homeDir = env.HOME !== undefined && env.HOME !== "" ? env.HOME : homedir();
  const kinds = options.deviceKinds;

  // A binary file is not worth parsing: YAML would find a problem on every line of it.
  if (text.includes("\0")) {
    throw new ConfigError(file, [
      { path: "", message: "is not a text file (it holds NUL bytes); a config is YAML or JSON text" },
    ]);
  }
  const source = new ConfigSource(text);
  problems.push(...source.syntaxProblems());
  const { used, failed } = substituteDocument(source, envLookup(env, options.dotenv ?? {}), problems);
  const skip = (path: FieldPath) => failed.some((done) => isUnder(path, done));
  const data = source.toJS(problems);

  const parsed = buildSchema(kinds).safeParse(data, {
    error: (issue) =>
      issue.input === undefined && (issue.code === "invalid_type" || issue.code === "invalid_value")
        ? "required"
        : undefined,
  });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (!skip(issue.path)) problems.push(...issueProblems(issue, data, kinds, source));
    }
  }
  const references = checkReferences(data, { source, baseDir, homeDir, problems, skip, kinds });
  // Checked even when other fields have problems, so that one run reports everything.
  const rawDataDir = valueAt(data, ["data_dir"]);
  const writtenDataDir = typeof rawDataDir === "string" && rawDataDir !== "" ? rawDataDir : undefined;
  const dataDir = resolveLocalPath(writtenDataDir ?? DEFAULT_DATA_DIR, baseDir, homeDir);
  if (rawDataDir === undefined || (writtenDataDir !== undefined && !skip(["data_dir"]))) {
    const problem = checkDataDir(dataDir, writtenDataDir, source);
    if (problem !== undefined) problems.push(problem);
  }

  const server =
    parsed.success && parsed.data.server !== undefined && !skip(["server"])
      ? serverConfig(parsed.data.server, (text) => resolveLocalPath(text, baseDir, homeDir), source, problems)
      : undefined;

  const notify =
    parsed.success && parsed.data.notify !== undefined && !skip(["notify"])
      ? notifyConfig(parsed.data.notify, (text) => resolveLocalPath(text, baseDir, homeDir), source, problems)
      : undefined;
  const opcua =
    parsed.success && parsed.data.opcua !== undefined && !skip(["opcua"])
      ? opcuaConfig(parsed.data.opcua, (text) => resolveLocalPath(text, baseDir, homeDir), source, problems)
      : undefined;
  for (const printer of Object.keys(opcua?.mirror?.names ?? {}))
    if (!parsed.success || parsed.data.devices?.[printer]?.printer?.farm !== true)
      problems.push(
        source.problem(["opcua", "mirror", "names", printer], `there is no farm printer ${printer}`, {
          atKey: true,
        }),
      );

  if (!parsed.success || problems.length > 0) {
    throw new ConfigError(
      file,
      problems.map((problem) => ({ ...problem, message: maskSubstitutions(problem.message, used) })),
    );
  }

  const out = parsed.data;
  const syncs = new Map<string, SyncConfig>();
  for (const [name, sync] of Object.entries(out.syncs ?? {})) {
    const endpoints = references.endpoints.get(name);
    if (endpoints === undefined)
      throw new Error(`sync "${name}" has no endpoints although it has no problems`);
    syncs.set(name, {
      name,
      source: endpoints.source,
      targets: endpoints.targets,
      mode: sync.mode,
      include: sync.include,
      exclude: sync.exclude,
      when: sync.when,
      modTimeToleranceS: sync.mtime_tolerance,
      compare: sync.compare,
      onConflict: sync.on_conflict,
      unicode: sync.unicode,
      watch: sync.watch,
      ...(sync.poll === undefined ? {} : { pollS: sync.poll }),
      ...(sync.schedule === undefined ? {} : { schedule: sync.schedule }),
      rescanS: sync.rescan,
      staging: sync.staging,
      settleS: sync.settle ?? (sync.mode === "move" ? DEFAULT_MOVE_SETTLE_S : 0),
    });
  }
  return {
    file: resolve(file),
    baseDir,
    dataDir,
    devices: new Map(
      Object.entries(out.devices ?? {}).map(([name, device]) => [
        name,
        {
          name,
          kind: device.kind,
          options: device.options,
          ...(device.printer ? { printer: device.printer } : {}),
        },
      ]),
    ),
    groups: references.groups,
    syncs,
    ...(server ? { server } : {}),
    farm: out.farm,
    ...(notify ? { notify } : {}),
    ...(opcua ? { opcua } : {}),
  };
}

function valueAt(data: unknown, path: FieldPath): unknown {
  let value = data;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** One zod issue as problems placed in the file, with Ferry's wording where zod's is vague. */
function issueProblems(
  issue: z.core.$ZodIssue,
  data: unknown,
  kinds: readonly DeviceKind[],
  source: ConfigSource,
): ConfigProblem[] {
  const path = issue.path;
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(kinds, path, valueAt(data, [...path, "type"]));
    const hint = known.length > 0 ? `; known keys: ${known.join(", ")}` : "";
    return issue.keys.map((key) =>
      source.problem([...path, key], `unknown key "${key}"${hint}`, { atKey: true }),
    );
  }
  const isDeviceType = path.length === 3 && path[0] === "devices" && path[2] === "type";
  if (issue.code === "invalid_union" && issue.discriminator === "type" && isDeviceType) {
    const type = valueAt(data, path);
    const known = `known types: ${kinds.map((k) => k.kind).join(", ")}`;
    const message =
      type === undefined ? `missing "type"; ${known}` : `unknown type ${JSON.stringify(type)}; ${known}`;
    return [source.problem(path, message)];
  }
  if (path.length === 0 && issue.code === "invalid_type") {
    return [source.problem(path, `expected a mapping with the keys ${TOP_LEVEL_KEYS.join(", ")}`)];
  }
  return [source.problem(path, issue.message)];
}
