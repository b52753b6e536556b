/** PrusaLink printers: the driver, its storage adapter, and the HTTP client they share. */
export { prusalinkDriver, openPrusaLinkDriver, PrusaLinkDriver, activityOf, jobFilePath } from "./driver.ts";
export { prusalinkPrinterCapabilities } from "./options.ts";
export {
  prusalinkStorage,
  openPrusaLinkStorage,
  PrusaLinkStorage,
  prusalinkCapabilities,
  FAT_FORBIDDEN,
  type ClientTuning,
} from "./storage.ts";
export { prusalinkOptionsSchema, type PrusaLinkOptions } from "./options.ts";
export { PrusaLinkClient, type PrusaLinkClientOptions } from "./client.ts";
