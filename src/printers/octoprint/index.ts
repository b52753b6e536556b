/** OctoPrint servers and their printers: the driver, its storage adapter, and the HTTP client they share. */
export { octoprintDriver, openOctoPrintDriver, OctoPrintDriver, activityOf } from "./driver.ts";
export { octoprintPrinterCapabilities } from "./options.ts";
export {
  octoprintStorage,
  openOctoPrintStorage,
  OctoPrintStorage,
  octoprintCapabilities,
  serverName,
  OCTOPRINT_FORBIDDEN,
  type ClientTuning,
} from "./storage.ts";
export { octoprintOptionsSchema, type OctoPrintOptions } from "./options.ts";
export { OctoPrintClient, type OctoPrintClientOptions } from "./client.ts";
