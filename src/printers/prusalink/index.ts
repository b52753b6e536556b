/** PrusaLink printers: the driver, its storage adapter, and the HTTP client they share. */
export {
  prusalinkDriver,
  openPrusaLinkDriver,
  PrusaLinkDriver,
  activityOf,
  jobFilePath,
  prusalinkPrinterCapabilities,
} from "./driver.ts";
export {
  prusalinkStorage,
  openPrusaLinkStorage,
  PrusaLinkStorage,
  prusalinkOptionsSchema,
  prusalinkCapabilities,
  FAT_FORBIDDEN,
  type PrusaLinkOptions,
  type ClientTuning,
} from "./storage.ts";
export { PrusaLinkClient, type PrusaLinkClientOptions } from "./client.ts";
