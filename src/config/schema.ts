/**
 * The one zod schema of ferry.yaml, built per load from the device kinds this build knows: device
 * entries are a discriminated union on `type`, each kind's options with `type` added. Strict
 * everywhere: a key Ferry does not know is a problem, never silently ignored.
 */
import { Cron } from "croner";
import picomatch from "picomatch";
import { z } from "zod";
import { CHANNEL_KEYS, NOTIFY_KEYS, notifySchema, RULE_KEYS } from "./notify.ts";
import { OPCUA_KEYS, OPCUA_MIRROR_KEYS, OPCUA_SERVER_KEYS, opcuaSchema } from "./opcua.ts";
import { AUTH_KEYS, OIDC_KEYS, SERVER_KEYS, serverSchema } from "./server.ts";
import type { DeviceKind, FarmConfig, PrinterSettings } from "./types.ts";

/** Device, group and sync names. No ":" (it separates a device from its path) and no "/". */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const TOP_LEVEL_KEYS = [
  "data_dir",
  "devices",
  "groups",
  "syncs",
  "server",
  "farm",
  "notify",
  "opcua",
] as const;
/** Keys every printer's entry takes beside its type's options (what the farm knows of it). */
export const PRINTER_KEYS = ["farm", "model", "tags", "auto_clear", "camera_url"] as const;
export const FARM_KEYS = ["auto_schedule", "approval", "max_heating", "interval"] as const;
/** Roles whose jobs never wait for approval. */
export const TRUSTED_ROLES = ["admin", "operator"] as const;
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

const printerShape = {
  farm: z.boolean().default(false),
  model: z.string().trim().min(1, "must not be empty").optional(),
  tags: z.preprocess(toList, z.array(z.string().trim().min(1, "a tag must not be empty"))).default([]),
  auto_clear: z.boolean().default(false),
  camera_url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
};

type PrinterKeys = z.output<z.ZodObject<typeof printerShape>>;

function printerSettings(keys: PrinterKeys): PrinterSettings {
  return {
    farm: keys.farm,
    ...(keys.model === undefined ? {} : { model: keys.model }),
    tags: keys.tags,
    autoClear: keys.auto_clear,
    ...(keys.camera_url === undefined ? {} : { cameraUrl: keys.camera_url }),
  };
}

/** A printer entry's keys: the farm's ones and its type's options. */
function splitPrinterKeys(
  entry: Record<string, unknown>,
): [Record<string, unknown>, Record<string, unknown>] {
  const farm: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry))
    ((PRINTER_KEYS as readonly string[]).includes(key) ? farm : options)[key] = value;
  return [farm, options];
}

/**
 * A printer added at run time (the API): its options with the farm keys, as ferry.yaml would
 * have them (less `type`), checked by the type's schema and the farm's. Problems name the field.
 */
export function parsePrinterEntry(
  kind: DeviceKind,
  entry: Record<string, unknown>,
): { ok: true; options: unknown; printer: PrinterSettings } | { ok: false; problems: string[] } {
  const [farmKeys, rest] = splitPrinterKeys(entry);
  const farm = z.strictObject(printerShape).safeParse(farmKeys);
  const options = kind.optionsSchema.safeParse(rest);
  const problems = [farm, options].flatMap((parsed) =>
    parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".") || "(options)"}: ${i.message}`),
  );
  if (!farm.success || !options.success) return { ok: false, problems };
  return { ok: true, options: options.data, printer: printerSettings(farm.data) };
}

const role = z
  .string()
  .trim()
  .min(1, "a role must not be empty")
  .superRefine((name, ctx) => {
    if ((TRUSTED_ROLES as readonly string[]).includes(name))
      ctx.addIssue({
        code: "custom",
        message: `${name}s' jobs never wait for approval; list the roles whose jobs do (e.g. user)`,
      });
  });

const farmSchema = z
  .strictObject({
    auto_schedule: z.boolean().default(true),
    approval: z.preprocess(toList, z.array(role)).default([]),
    max_heating: z
      .number()
      .int("must be a whole number")
      .min(1, "at least 1 printer must be allowed to heat")
      .default(4),
    interval: duration(2).pipe(z.number().min(0.1, "at most ten looks a second")),
  })
  .transform((farm): FarmConfig => ({
    autoSchedule: farm.auto_schedule,
    approval: farm.approval,
    maxHeating: farm.max_heating,
    intervalS: farm.interval,
  }));

export const DEFAULT_FARM: FarmConfig = Object.freeze({
  autoSchedule: true,
  approval: [],
  maxHeating: 4,
  intervalS: 2,
});

export interface ParsedDevice {
  kind: string;
  options: unknown;
  printer?: PrinterSettings;
}

/** One kind's entry: its options plus `type`, parsed into `{ kind, options }` (options without `type`). */
function deviceEntry(definition: DeviceKind) {
  const schema = definition.optionsSchema;
  const type = z.literal(definition.kind);
  const printer = definition.printer === true;
  /** The parsed entry less `type`, the farm keys taken out of a printer's. */
  const parsed = (entry: Record<string, unknown>): ParsedDevice => {
    if (!printer) return { kind: definition.kind, options: entry };
    const [farm, options] = splitPrinterKeys(entry);
    return { kind: definition.kind, options, printer: printerSettings(farm as PrinterKeys) };
  };
  if (schema instanceof z.ZodObject) {
    try {
      // safeExtend keeps the kind's refinements (plain extend refuses objects that have some).
      return schema
        .safeExtend({ type, ...(printer ? printerShape : {}) })
        .strict()
        .transform(({ type: _type, ...entry }) => parsed(entry));
    } catch {
      // Not extendable after all: fall through to the general form.
    }
  }
  // Loose: the kind's own schema judges the other keys. A printer's farm keys are checked here.
  const general = <T extends z.ZodObject>(entry: T) =>
    entry.transform((value, ctx): ParsedDevice => {
      const { type: _type, ...rest } = value as Record<string, unknown>;
      const [farm, options] = printer ? splitPrinterKeys(rest) : [{}, rest];
      const parsed = schema.safeParse(options);
      if (!parsed.success) {
        // The kind's problems, at their own fields.
        for (const issue of parsed.error.issues)
          ctx.addIssue({ code: "custom", message: issue.message, path: issue.path, input: options });
        return z.NEVER;
      }
      return {
        kind: definition.kind,
        options: parsed.data,
        ...(printer ? { printer: printerSettings(farm as PrinterKeys) } : {}),
      };
    });
  return printer ? general(z.looseObject({ type, ...printerShape })) : general(z.looseObject({ type }));
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
  if (path.length === 1 && path[0] === "farm") return [...FARM_KEYS];
  if (path.length === 2 && path[0] === "syncs") return [...SYNC_KEYS];
  if (path.length === 1 && path[0] === "server") return [...SERVER_KEYS];
  if (path.length === 1 && path[0] === "notify") return [...NOTIFY_KEYS];
  if (path.length === 3 && path[0] === "notify" && path[1] === "rules") return [...RULE_KEYS];
  if (path.length === 3 && path[0] === "notify" && path[1] === "channels")
    return [...((CHANNEL_KEYS as Partial<Record<string, readonly string[]>>)[String(type)] ?? ["type"])];
  if (path.length === 1 && path[0] === "opcua") return [...OPCUA_KEYS];
  if (path.length === 2 && path[0] === "opcua" && path[1] === "mirror") return [...OPCUA_MIRROR_KEYS];
  if (path.length === 2 && path[0] === "opcua" && path[1] === "server") return [...OPCUA_SERVER_KEYS];
  if (path.length === 2 && path[0] === "server" && path[1] === "tls") return ["cert_file", "key_file"];
  if (path.length === 2 && path[0] === "server" && path[1] === "auth") return [...AUTH_KEYS];
  if (path.length === 3 && path[0] === "server" && path[1] === "auth" && path[2] === "oidc")
    return [...OIDC_KEYS];
  if (path.length === 2 && path[0] === "devices") {
    const kind = kinds.find((k) => k.kind === type);
    const schema = kind?.optionsSchema;
    const farm = kind?.printer === true ? PRINTER_KEYS : [];
    if (schema instanceof z.ZodObject) return ["type", ...Object.keys(schema.shape), ...farm];
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
      farm: z.preprocess((value) => value ?? {}, farmSchema),
      notify: notifySchema(duration).optional(),
      opcua: opcuaSchema.optional(),
    }),
  );
}

export type ParsedConfig = z.output<ReturnType<typeof buildSchema>>;
