/**
 * A JSON-safe summary of a loaded config, for `ferry config`, logs and the API: secrets appear as
 * "[redacted]" (they are `Secret`s, which redact themselves), Maps become plain objects.
 */
import { Secret } from "../core/secret.ts";
import type { Endpoint, FerryConfig } from "./types.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ConfigSummary {
  file: string;
  baseDir: string;
  dataDir: string;
  devices: Record<string, { type: string } & Record<string, Json>>;
  groups: Record<string, string[]>;
  syncs: Record<
    string,
    {
      source: Endpoint;
      targets: Endpoint[];
      mode: string;
      include: string[];
      exclude: string[];
      when: string;
      mtime_tolerance: number;
      compare: string;
      on_conflict: string;
      unicode: string;
    }
  >;
}

const REDACTED = "[redacted]";

/** Any value as JSON: Secret → "[redacted]", Map → object, Set → array, URL/Date → text; functions dropped. */
export function toJsonSafe(value: unknown, seen = new WeakSet<object>()): Json | undefined {
  if (value instanceof Secret) return REDACTED;
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") return undefined; // undefined, functions, symbols
  if (seen.has(value)) return "[circular]";
  seen.add(value);
  try {
    if (value instanceof URL) return value.href;
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
    if (value instanceof Map) return toJsonSafe(Object.fromEntries(value), seen);
    if (value instanceof Set) return toJsonSafe([...value], seen);
    if (Array.isArray(value)) return value.map((item: unknown) => toJsonSafe(item, seen) ?? null);
    const out: Record<string, Json> = {};
    for (const [key, item] of Object.entries(value)) {
      const safe = toJsonSafe(item, seen);
      if (safe !== undefined) out[key] = safe;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

export function describeConfig(config: FerryConfig): ConfigSummary {
  const devices: ConfigSummary["devices"] = {};
  for (const [name, device] of config.devices) {
    const options = toJsonSafe(device.options);
    const fields = typeof options === "object" && options !== null && !Array.isArray(options) ? options : {};
    devices[name] = { type: device.kind, ...fields };
  }
  const syncs: ConfigSummary["syncs"] = {};
  for (const [name, sync] of config.syncs) {
    syncs[name] = {
      source: { ...sync.source },
      targets: sync.targets.map((target) => ({ ...target })),
      mode: sync.mode,
      include: [...sync.include],
      exclude: [...sync.exclude],
      when: sync.when,
      mtime_tolerance: sync.modTimeToleranceS,
      compare: sync.compare,
      on_conflict: sync.onConflict,
      unicode: sync.unicode,
    };
  }
  return {
    file: config.file,
    baseDir: config.baseDir,
    dataDir: config.dataDir,
    devices,
    groups: Object.fromEntries([...config.groups].map(([name, members]) => [name, [...members]])),
    syncs,
  };
}
