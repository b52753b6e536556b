/**
 * The parts of OctoPrint's answers Ferry reads (the pre-2.0.0 shapes of OctoPrint 1.x, which 2.0
 * keeps for clients that ask for no API version), parsed so that an answer that does not fit is a
 * PROTOCOL error naming the field. Unknown fields are allowed: servers and plugins add their own.
 */
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";

export interface WireEntry {
  name: string;
  display?: string | undefined;
  path: string;
  type: string;
  size?: number | undefined;
  date?: number | null | undefined;
  hash?: string | undefined;
  /** Print statistics: how its last print ended. */
  prints?: { last?: { success: boolean } | undefined } | undefined;
  children?: WireEntry[] | undefined;
}

export const entrySchema: z.ZodType<WireEntry> = z.lazy(() =>
  z.looseObject({
    name: z.string(),
    display: z.string().optional(),
    path: z.string(),
    type: z.string(),
    size: z.number().optional(),
    date: z.number().nullable().optional(),
    hash: z.string().optional(),
    prints: z.looseObject({ last: z.looseObject({ success: z.boolean() }).optional() }).optional(),
    children: z.array(entrySchema).optional(),
  }),
);

export const listingSchema = z.looseObject({
  files: z.array(entrySchema),
  free: z.number().optional(),
  total: z.number().optional(),
});

export const uploadSchema = z.looseObject({
  files: z.looseObject({ local: z.looseObject({ path: z.string() }) }).optional(),
  // OctoPrint 2.0 with an API version asked for answers `file` instead.
  file: z.looseObject({ path: z.string() }).optional(),
  done: z.boolean().optional(),
});

export const folderSchema = z.looseObject({
  folder: z.looseObject({ name: z.string(), path: z.string() }),
});

export const stateSchema = z.looseObject({
  text: z.string(),
  flags: z.record(z.string(), z.boolean()).optional(),
  error: z.string().optional(),
});

export const temperatureSchema = z.looseObject({
  actual: z.number().nullable(),
  target: z.number().nullable().optional(),
});

export const printerSchema = z.looseObject({
  // tool0.., bed, chamber, and `history` when asked for (never by Ferry).
  temperature: z.record(z.string(), z.unknown()).optional(),
  state: stateSchema.optional(),
});

export const jobSchema = z.looseObject({
  job: z
    .looseObject({
      file: z
        .looseObject({
          name: z.string().nullable().optional(),
          path: z.string().nullable().optional(),
          display: z.string().nullable().optional(),
          origin: z.string().nullable().optional(),
        })
        .optional(),
    })
    .optional(),
  progress: z
    .looseObject({
      completion: z.number().nullable().optional(),
      printTime: z.number().nullable().optional(),
      printTimeLeft: z.number().nullable().optional(),
    })
    .nullable()
    .optional(),
  state: z.string(),
  error: z.string().optional(),
});

export type WireJob = z.output<typeof jobSchema>;
export type WirePrinter = z.output<typeof printerSchema>;

/** Parses `value` with `schema`; PROTOCOL naming the field when it does not fit. */
export function parseWire<T>(schema: z.ZodType<T>, value: unknown, where: string, subject?: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join(".") ?? "";
  throw new FerryError(
    "PROTOCOL",
    `${where}: unexpected reply${field === "" ? "" : ` at ${field}`}: ${issue?.message ?? "invalid"}`,
    subject === undefined ? {} : { subject },
  );
}

/** The bundled Action Command Prompt plugin: `{}`, or the prompt the firmware shows. */
export const promptSchema = z.looseObject({ text: z.string().optional() });
