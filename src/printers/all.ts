/** Every printer driver Ferry knows, by kind. Adding a driver means adding it here. */
import { prusalinkDriver } from "./prusalink/driver.ts";

export const printerDrivers = [prusalinkDriver] as const;
