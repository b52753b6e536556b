/**
 * The one zod schema of ferry.yaml, built per load from the device kinds this build knows: device
 * entries are a discriminated union on `type`, each kind's options with `type` added. Strict
 * everywhere: a key Ferry does not know is a problem, never silently ignored.
 */
import { Cron } from "croner";
import picomatch from "picomatch";
import { z } from "zod";
import { SERVER_KEYS, serverSchema } from "./server.ts";
import type { DeviceKind } from "./types.ts";

/** Device, group and sync names. No ":" (it separates a device from its path) and no "/". */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const TOP_LEVEL_KEYS = ["data_dir", "devices", "groups", "syncs", "server"] as const;
export const SYNC_KEYS = [
  "source",
  "targets",
  "mode",
  "include",
  "exclude",
  "when",
  "mtime_tolerance",
  "compare",
  "on_conflict",
  "unicode",
  "watch",
  "poll",
  "schedule",
  "rescan",
  "staging",
  "settle",
] as const;

export const DEFAULT_DATA_DIR = "./ferry-data";
export const DEFAULT_MTIME_TOLERANCE_S = 60;
/** A watched sync also rescans this often, so nothing missed by the watcher is lost. */
export const DEFAULT_RESCAN_S = 600;
/** A moved file leaves the source once unchanged this long: loggers pause for seconds between writes. */
export const DEFAULT_MOVE_SETTLE_S = 10;

const UNITS_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** 60, "60", "60s", "1m30s", "500ms", "2h" → seconds; undefined when it is not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    seconds += Number(amount) * (UNITS_S[unit ?? ""] ?? Number.NaN);
  }
  return seconds;
}

/** A single string is accepted where a list is expected. */
const toList = (value: unknown): unknown => (typeof value === "string" ? [value] : value);

const glob = z
  .string()
  .min(1, "a glob must not be empty")
  .superRefine((pattern, ctx) => {
    try {
      picomatch.makeRe(pattern, { dot: true, strictBrackets: true });
    } catch (error) {
      ctx.addIssue({ code: "custom", message: `not a valid glob: ${(error as Error).message}` });
    }
  });

const globList = z.preprocess(toList, z.array(glob));

/** A duration in seconds; `fallback` when absent (undefined: optional). */
function duration(fallback?: number) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return fallback;
      const seconds = parseDuration(value);
      if (seconds === undefined) {
        ctx.addIssue({ code: "custom", message: 'expected a duration such as 60, "60s", "2m" or "1m30s"' });
        return z.NEVER;
      }
      return seconds;
    });
}

const cron = z.string().superRefine((pattern, ctx) => {
  try {
    new Cron(pattern, { paused: true }).stop();
  } catch (error) {
    ctx.addIssue({ code: "custom", message: `not a cron schedule: ${(error as Error).message}` });
  }
});

const syncSchema = z.strictObject({
  source: z.string().min(1, "must not be empty"),
  targets: z.preprocess(
    toList,
    z.array(z.string().min(1, "must not be empty")).min(1, "a sync needs at least one target"),
  ),
  mode: z.enum(["mirror", "copy", "move"]),
  include: globList.default(["**"]),
  exclude: globList.default([]),
  when: z.enum(["idle", "always"]).default("always"),
  mtime_tolerance: duration(DEFAULT_MTIME_TOLERANCE_S).pipe(z.number()),
  compare: z.enum(["size-mtime", "checksum"]).default("size-mtime"),
  on_conflict: z.enum(["rename", "overwrite", "skip"]).default("rename"),
  unicode: z.enum(["keep", "nfc"]).default("keep"),
  watch: z.boolean().default(false),
  poll: duration().refine((s) => s === undefined || s >= 1, "poll at most once a second"),
  schedule: cron.optional(),
  rescan: duration(DEFAULT_RESCAN_S).pipe(z.number().min(1, "rescan at most once a second")),
  staging: z.boolean().default(false),
  settle: duration(),
});

export interface ParsedDevice {
  kind: string;
  options: unknown;
}

/** One kind's entry: its options plus `type`, parsed into `{ kind, options }` (options without `type`). */
function deviceEntry(definition: DeviceKind) {
  const schema = definition.optionsSchema;
  const type = z.literal(definition.kind);
  if (schema instanceof z.ZodObject) {
    try {
      // safeExtend keeps the kind's refinements (plain extend refuses objects that have some).
      return schema
        .safeExtend({ type })
        .strict()
        .transform(({ type: _type, ...options }): ParsedDevice => ({ kind: definition.kind, options }));
    } catch {
      // Not extendable after all: fall through to the general form.
    }
  }
  return (
    z
      .looseObject({ type })
      .transform(({ type: _type, ...options }) => options)
      // The kind's schema takes any input; zod's typing wants the input to match what the pipe gives.
      .pipe(schema as z.ZodType<unknown, Record<string, unknown>>)
      .transform((options): ParsedDevice => ({ kind: definition.kind, options }))
  );
}

function deviceSchema(kinds: readonly DeviceKind[]): z.ZodType<ParsedDevice> {
  const [first, ...rest] = kinds.map(deviceEntry);
  if (first === undefined) {
    return z.unknown().transform((_value, ctx): ParsedDevice => {
      ctx.addIssue({ code: "custom", message: "this build of Ferry knows no device types" });
      return z.NEVER;
    });
  }
  return z.discriminatedUnion("type", [first, ...rest]);
}

/** The keys an object at a known place may have, for "unknown key" hints. */
export function knownKeys(
  kinds: readonly DeviceKind[],
  path: readonly PropertyKey[],
  type: unknown,
): string[] {
  if (path.length === 0) return [...TOP_LEVEL_KEYS];
  if (path.length === 2 && path[0] === "syncs") return [...SYNC_KEYS];
  if (path.length === 1 && path[0] === "server") return [...SERVER_KEYS];
  if (path.length === 2 && path[0] === "server" && path[1] === "tls") return ["cert_file", "key_file"];
  if (path.length === 2 && path[0] === "devices") {
    const schema = kinds.find((k) => k.kind === type)?.optionsSchema;
    if (schema instanceof z.ZodObject) return ["type", ...Object.keys(schema.shape)];
  }
  return [];
}

export function buildSchema(kinds: readonly DeviceKind[]) {
  const seen = new Set<string>();
  for (const { kind } of kinds) {
    if (seen.has(kind)) throw new Error(`device kind "${kind}" is defined twice`);
    seen.add(kind);
  }
  return z.preprocess(
    (value) => value ?? {},
    z.strictObject({
      data_dir: z.string().min(1, "must not be empty").optional(),
      devices: z.record(z.string(), deviceSchema(kinds)).nullish(),
      groups: z
        .record(
          z.string(),
          z.preprocess(
            toList,
            z.array(z.string().min(1, "must not be empty")).min(1, "a group needs at least one device"),
          ),
        )
        .nullish(),
      syncs: z.record(z.string(), syncSchema).nullish(),
      server: serverSchema.optional(),
    }),
  );
}

export type ParsedConfig = z.output<ReturnType<typeof buildSchema>>;
