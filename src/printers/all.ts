/** Every printer driver Ferry knows, by kind. Adding a driver means adding it here. */
import { moonrakerDriver } from "./moonraker/driver.ts";
import { octoprintDriver } from "./octoprint/driver.ts";
import { prusalinkDriver } from "./prusalink/driver.ts";

export const printerDrivers = [prusalinkDriver, octoprintDriver, moonrakerDriver] as const;
