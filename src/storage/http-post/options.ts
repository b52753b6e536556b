/** The options of an http-post device in ferry.yaml, validated once (snake_case, strict). */
import { z } from "zod";
import { basename } from "../../core/paths.ts";
import { secretString } from "../../core/secret.ts";
import type { Capabilities, StorageKind } from "../adapter.ts";

/** Control characters cannot travel in a part's quoted file name (CR and LF would end the header). */
export const CONTROL_CHARS = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("") + "\x7f";

/** The first control character in `text`, if any. */
export function controlCharIn(text: string): string | undefined {
  for (const char of text) if (CONTROL_CHARS.includes(char)) return char;
  return undefined;
}

const DEFAULT_TIMEOUT_S = 120;

/** 30, "30s", "2m", "500ms" → seconds. */
const timeoutSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const match = typeof value === "number" ? null : /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  const seconds =
    typeof value === "number"
      ? value
      : match
        ? Number(match[1]) * (match[2] === "ms" ? 0.001 : match[2] === "m" ? 60 : 1)
        : Number.NaN;
  if (!(seconds > 0)) {
    ctx.addIssue({ code: "custom", message: 'expected a positive duration such as 120, "30s" or "2m"' });
    return z.NEVER;
  }
  return seconds;
});

const fieldName = z
  .string()
  .min(1)
  .refine((name) => controlCharIn(name) === undefined, "no control characters in field names");

export const httpPostOptionsSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }),
    /** Name of the form's file field. */
    file_field: fieldName.default("file"),
    /** Text fields sent with every file; `{path}` and `{name}` in a value become the file's path and name. */
    fields: z.record(fieldName, z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
    username: z.string().min(1).optional(),
    password: secretString().optional(),
    /** A regular expression the page of a 2xx answer must match for the upload to count. */
    success_pattern: z
      .string()
      .min(1)
      .refine((pattern) => {
        try {
          new RegExp(pattern);
          return true;
        } catch {
          return false;
        }
      }, "not a valid regular expression")
      .optional(),
    /** PEM file of the CA (or self-signed certificate) to trust for https, relative to the config file. */
    ca_file: z.string().min(1).optional(),
    /** Seconds without progress (connecting, sending, waiting for the answer) before giving up. */
    timeout: timeoutSchema.default(DEFAULT_TIMEOUT_S),
  })
  .superRefine((options, ctx) => {
    if ((options.username === undefined) !== (options.password === undefined)) {
      ctx.addIssue({ code: "custom", message: "give username and password together", path: ["password"] });
    }
    if (options.file_field in options.fields) {
      ctx.addIssue({ code: "custom", message: "a text field has the file field's name", path: ["fields"] });
    }
    const url = URL.parse(options.url);
    if (url && (url.username !== "" || url.password !== "")) {
      ctx.addIssue({
        code: "custom",
        message: "put credentials in username/password, not the url",
        path: ["url"],
      });
    }
  });

export type HttpPostOptions = z.output<typeof httpPostOptionsSchema>;

/** `{path}` and `{name}` in a field's value, for the file being sent. */
export function fillPlaceholders(value: string, path: string): string {
  return value.replace(/\{(path|name)\}/g, (_m, key: string) => (key === "path" ? path : basename(path)));
}

const capabilities: Readonly<Capabilities> = Object.freeze({
  read: false,
  write: true,
  list: "none",
  listSizes: false,
  modTimePrecisionMs: null,
  setModTime: false,
  hashes: [],
  rangeRead: false,
  resumableWrite: "none",
  // A form's server takes a file only once its body is complete (the closing boundary came).
  partialWritesVisible: false,
  atomicRename: false,
  serverSideMove: false,
  // Sites process each log as it arrives (Flight Review parses it in its one process): a second
  // upload keeps the line busy while the first is processed; more only queue there and time out.
  maxConcurrency: 2,
  forbiddenChars: CONTROL_CHARS,
  maxNameBytes: null,
  caseInsensitive: false,
  watch: false,
  usage: false,
  removable: false,
});

export const httpPostKind: StorageKind<HttpPostOptions> = {
  kind: "http-post",
  optionsSchema: httpPostOptionsSchema,
  capabilities,
  cleartext: (options) =>
    options.username !== undefined && options.url.startsWith("http:")
      ? "Basic authentication over http:// sends the password in clear (use https://)"
      : undefined,
};
