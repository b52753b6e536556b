/**
 * Wire types of the Moonraker replies Ferry reads, as zod schemas (only the fields Ferry uses are
 * checked; the rest passes through). A reply that does not fit is a PROTOCOL error naming the field.
 * Printer objects come whole from a query and in pieces from `notify_status_update`, so they are
 * kept as loose records and read with the getters at the end.
 */
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";

const maybeNumber = z
  .number()
  .nullish()
  .transform((v) => v ?? undefined);
const maybeString = z
  .string()
  .nullish()
  .transform((v) => v ?? undefined);

export const serverInfoSchema = z.looseObject({
  klippy_connected: z.boolean(),
  /** disconnected | startup | ready | error | shutdown */
  klippy_state: z.string(),
  moonraker_version: maybeString,
});
export type WireServerInfo = z.infer<typeof serverInfoSchema>;

export const objectsListSchema = z.looseObject({ objects: z.array(z.string()) });

/** Printer objects by name, each a record of its fields. */
export const statusSchema = z.record(z.string(), z.record(z.string(), z.unknown()));
export type WireStatus = z.infer<typeof statusSchema>;

export const objectsQuerySchema = z.looseObject({ eventtime: z.number(), status: statusSchema });

const pathInfo = {
  /** Unix time, seconds with a fraction. */
  modified: z.number(),
  size: z.number().int().nonnegative(),
  permissions: z.string(),
};

export const directorySchema = z.looseObject({
  dirs: z.array(z.looseObject({ dirname: z.string().min(1), ...pathInfo })),
  files: z.array(z.looseObject({ filename: z.string().min(1), ...pathInfo })),
  disk_usage: z.looseObject({ total: z.number(), used: z.number(), free: z.number() }).nullish(),
});
export type WireDirectory = z.infer<typeof directorySchema>;

const itemSchema = z.looseObject({ path: z.string(), root: z.string(), ...pathInfo });

/** Moonraker answers an upload unwrapped, and other file operations inside `result`. */
export const fileActionSchema = z.looseObject({ item: itemSchema, action: z.string() });
export type WireFileAction = z.infer<typeof fileActionSchema>;

export const metadataSchema = z.looseObject({
  size: maybeNumber,
  modified: maybeNumber,
  /** Seconds, from the slicer. */
  estimated_time: maybeNumber,
  /** The last history job of the file; null before it was ever printed. */
  job_id: maybeString,
  /** Unix time of the last start of the file. */
  print_start_time: maybeNumber,
  filename: maybeString,
});
export type WireMetadata = z.infer<typeof metadataSchema>;

/** Parses a reply; a mismatch becomes a PROTOCOL error naming the printer, the request and the field. */
export function parseWire<T>(schema: z.ZodType<T>, value: unknown, where: string, subject?: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join(".") : "(body)";
  throw new FerryError(
    "PROTOCOL",
    `${where}: unexpected reply: field "${field}": ${issue?.message ?? "invalid"}`,
    {
      cause: parsed.error,
      ...(subject === undefined ? {} : { subject }),
    },
  );
}

/** A number field of a printer object, when it is one. */
export function numberField(status: WireStatus, object: string, field: string): number | undefined {
  const value = status[object]?.[field];
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

export function stringField(status: WireStatus, object: string, field: string): string | undefined {
  const value = status[object]?.[field];
  return typeof value === "string" ? value : undefined;
}

export function booleanField(status: WireStatus, object: string, field: string): boolean | undefined {
  const value = status[object]?.[field];
  return typeof value === "boolean" ? value : undefined;
}

/** Merges a `notify_status_update` (changed fields only) into the status kept so far. */
export function mergeStatus(into: WireStatus, update: WireStatus): void {
  for (const [name, fields] of Object.entries(update)) into[name] = { ...into[name], ...fields };
}
