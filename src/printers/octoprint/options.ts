/** The options of a OctoPrint printer in ferry.yaml, and what its driver can do. */
import { z } from "zod";
import { secretString } from "../../core/secret.ts";
import { apiKeyInClear, type PrinterCapabilities, type PrinterKind } from "../driver.ts";

export const KIND = "octoprint";

export const octoprintOptionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }),
    /** A user's or an application's API key (OctoPrint's settings, "API" or "Application Keys"). */
    api_key: secretString(),
  })
  .strict();

export type OctoPrintOptions = z.output<typeof octoprintOptionsSchema>;

export const octoprintPrinterCapabilities: Readonly<PrinterCapabilities> = Object.freeze({
  startJob: true,
  pause: true,
  resume: true,
  cancel: true,
  events: "poll",
});

export const octoprintKind: PrinterKind<OctoPrintOptions> = {
  kind: KIND,
  optionsSchema: octoprintOptionsSchema,
  capabilities: octoprintPrinterCapabilities,
  cleartext: apiKeyInClear,
};
