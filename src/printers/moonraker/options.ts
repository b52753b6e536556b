/** The options of a Moonraker printer in ferry.yaml, and what its driver can do. */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import { apiKeyInClear, type PrinterCapabilities, type PrinterKind } from "../driver.ts";

export const KIND = "moonraker";

export const moonrakerOptionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }),
    /** Moonraker's API key, when its [authorization] requires one of untrusted clients. */
    api_key: secretString().optional(),
  })
  .strict();

export type MoonrakerOptions = z.output<typeof moonrakerOptionsSchema>;

export const moonrakerPrinterCapabilities: Readonly<PrinterCapabilities> = Object.freeze({
  startJob: true,
  pause: true,
  resume: true,
  cancel: true,
  events: "push",
});

export const moonrakerKind: PrinterKind<MoonrakerOptions> = {
  kind: KIND,
  optionsSchema: moonrakerOptionsSchema,
  capabilities: moonrakerPrinterCapabilities,
  cleartext: apiKeyInClear,
};
