/** Klipper printers behind Moonraker: the driver, its storage adapter, and the HTTP client they share. */
export {
  moonrakerDriver,
  openMoonrakerDriver,
  MoonrakerDriver,
  activityOf,
  temperaturesOf,
} from "./driver.ts";
export { moonrakerPrinterCapabilities } from "./options.ts";
export {
  moonrakerStorage,
  openMoonrakerStorage,
  MoonrakerStorage,
  moonrakerCapabilities,
  MOONRAKER_FORBIDDEN,
  type ClientTuning,
} from "./storage.ts";
export { moonrakerOptionsSchema, type MoonrakerOptions } from "./options.ts";
export { MoonrakerClient, type MoonrakerClientOptions } from "./client.ts";
