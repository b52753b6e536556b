/** The options of a PrusaLink printer in ferry.yaml, and what its driver can do. */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import { type PrinterCapabilities, type PrinterKind } from "../driver.ts";

export const KIND = "prusalink";

export const prusalinkOptionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }),
    /** Digest user (default "maker"). */
    username: z.string().min(1).optional(),
    password: secretString().optional(),
    api_key: secretString().optional(),
    /** Storage to use ("usb", "local"); default: the first available writable one. */
    storage: z
      .string()
      .regex(/^\/?[A-Za-z0-9_-]+$/, "a storage name such as usb or local")
      .transform((s) => s.replace(/^\//, "").toLowerCase())
      .optional(),
  })
  .strict()
  .superRefine((options, ctx) => {
    if (options.password === undefined && options.api_key === undefined) {
      ctx.addIssue({
        code: "custom",
        message: "set password (with username) or api_key",
        path: ["password"],
      });
    }
    if (options.password !== undefined && options.api_key !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: "set either password or api_key, not both",
        path: ["api_key"],
      });
    }
    if (options.username !== undefined && options.password === undefined) {
      ctx.addIssue({ code: "custom", message: "username needs a password", path: ["password"] });
    }
  });

export type PrusaLinkOptions = z.output<typeof prusalinkOptionsSchema>;

export const prusalinkPrinterCapabilities: Readonly<PrinterCapabilities> = Object.freeze({
  startJob: true,
  pause: true,
  resume: true,
  cancel: true,
  events: "poll",
});

export const prusalinkKind: PrinterKind<PrusaLinkOptions> = {
  kind: KIND,
  optionsSchema: prusalinkOptionsSchema,
  capabilities: prusalinkPrinterCapabilities,
  // Digest never sends the password; an API key travels as it is.
  cleartext: (options) =>
    options.api_key !== undefined && options.password === undefined && options.url.startsWith("http:")
      ? "the API key goes over http:// in clear (a password uses Digest and never travels)"
      : undefined,
};
