/** Klipper printers behind Moonraker: the driver, its storage adapter, and the HTTP client they share. */
export {
  moonrakerDriver,
  openMoonrakerDriver,
  MoonrakerDriver,
  activityOf,
  temperaturesOf,
  moonrakerPrinterCapabilities,
} from "./driver.ts";
export {
  moonrakerStorage,
  openMoonrakerStorage,
  MoonrakerStorage,
  moonrakerOptionsSchema,
  moonrakerCapabilities,
  MOONRAKER_FORBIDDEN,
  type MoonrakerOptions,
  type ClientTuning,
} from "./storage.ts";
export { MoonrakerClient, type MoonrakerClientOptions } from "./client.ts";
