/** OctoPrint servers and their printers: the driver, its storage adapter, and the HTTP client they share. */
export {
  octoprintDriver,
  openOctoPrintDriver,
  OctoPrintDriver,
  activityOf,
  octoprintPrinterCapabilities,
} from "./driver.ts";
export {
  octoprintStorage,
  openOctoPrintStorage,
  OctoPrintStorage,
  octoprintOptionsSchema,
  octoprintCapabilities,
  serverName,
  OCTOPRINT_FORBIDDEN,
  type OctoPrintOptions,
  type ClientTuning,
} from "./storage.ts";
export { OctoPrintClient, type OctoPrintClientOptions } from "./client.ts";
