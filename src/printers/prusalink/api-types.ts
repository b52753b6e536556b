/**
 * Wire types of the PrusaLink v1 responses Ferry reads, as zod schemas. Only the fields Ferry uses
 * are checked; everything else passes through. A reply that does not fit is a PROTOCOL error that
 * names the field (see `parseWire`).
 */
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";

/** A number the device may also send as null ("not known yet"); null is treated as absent. */
const maybeNumber = z
  .number()
  .nullish()
  .transform((v) => v ?? undefined);
const maybeString = z
  .string()
  .nullish()
  .transform((v) => v ?? undefined);
const maybeBoolean = z
  .boolean()
  .nullish()
  .transform((v) => v ?? undefined);

export const storageSchema = z.looseObject({
  /** "/usb", "/local", "/sdcard" */
  path: z.string().min(1),
  type: maybeString,
  name: maybeString,
  available: z.boolean(),
  read_only: maybeBoolean,
  free_space: maybeNumber,
  total_space: maybeNumber,
});
export type WireStorage = z.infer<typeof storageSchema>;

export const storageListSchema = z.looseObject({ storage_list: z.array(storageSchema) });

/** A folder child, or the object a per-file GET answers. */
export const fileEntrySchema = z.looseObject({
  /** 8.3 short name on the MK4, long name on the MK3. */
  name: z.string().min(1),
  display_name: maybeString,
  /** PRINT_FILE, FIRMWARE, FILE or FOLDER (kept open for types newer firmware may add). */
  type: z.string().min(1),
  m_timestamp: maybeNumber,
  size: maybeNumber,
  ro: maybeBoolean,
  read_only: maybeBoolean,
  refs: z.looseObject({ download: maybeString }).nullish(),
});
export type WireFileEntry = z.infer<typeof fileEntrySchema>;

export const fileInfoSchema = fileEntrySchema.extend({
  children: z.array(fileEntrySchema).nullish(),
});
export type WireFileInfo = z.infer<typeof fileInfoSchema>;

export const statusSchema = z.looseObject({
  printer: z.looseObject({
    /** IDLE BUSY PRINTING PAUSED FINISHED STOPPED ERROR ATTENTION READY (unknown words are kept). */
    state: z.string().min(1),
    temp_nozzle: maybeNumber,
    target_nozzle: maybeNumber,
    temp_bed: maybeNumber,
    target_bed: maybeNumber,
  }),
  job: z
    .looseObject({
      id: maybeNumber,
      progress: maybeNumber,
      time_remaining: maybeNumber,
      time_printing: maybeNumber,
    })
    .nullish(),
});
export type WireStatus = z.infer<typeof statusSchema>;

export const jobSchema = z.looseObject({
  id: z.number(),
  state: z.string().min(1),
  /** Percent. */
  progress: maybeNumber,
  time_remaining: maybeNumber,
  time_printing: maybeNumber,
  file: z
    .looseObject({
      name: z.string().min(1),
      display_name: maybeString,
      /** Folder of the file with its storage first ("/usb/SUBDIR~1"); some firmwares include the name. */
      path: z.string(),
      display_path: maybeString,
      size: maybeNumber,
      m_timestamp: maybeNumber,
    })
    .nullish(),
});
export type WireJob = z.infer<typeof jobSchema>;

/** Parses a reply; a mismatch becomes a PROTOCOL error naming the printer, the request and the field. */
export function parseWire<T>(schema: z.ZodType<T>, value: unknown, where: string, subject?: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join(".") : "(body)";
  return throwProtocol(
    `${where}: unexpected reply: field "${field}": ${issue?.message ?? "invalid"}`,
    subject,
    parsed.error,
  );
}

function throwProtocol(message: string, subject: string | undefined, cause: unknown): never {
  throw new FerryError("PROTOCOL", message, { cause, ...(subject === undefined ? {} : { subject }) });
}
