/**
 * Every printer driver Ferry knows, by kind. Adding a driver means adding it here. Like network
 * storage adapters (storage/all.ts), a driver's implementation is loaded with its first printer.
 */
import { createRequire } from "node:module";
import { definePrinterDriver, type PrinterDriverDefinition, type PrinterKind } from "./driver.ts";
import { moonrakerKind } from "./moonraker/options.ts";
import { octoprintKind } from "./octoprint/options.ts";
import { prusalinkKind } from "./prusalink/options.ts";

// require() of an ES module loads it synchronously, so opening a printer stays synchronous.
const load = createRequire(import.meta.url);

/** `kind`, whose implementation is loaded on its first `create`. */
function onFirstUse<Options>(
  kind: PrinterKind<Options>,
  implementation: () => PrinterDriverDefinition<Options>,
): PrinterDriverDefinition<Options> {
  return definePrinterDriver({
    ...kind,
    create: (options, context) => implementation().create(options, context),
  });
}

export const printerDrivers = [
  onFirstUse(
    prusalinkKind,
    () => (load("./prusalink/driver.ts") as typeof import("./prusalink/driver.ts")).prusalinkDriver,
  ),
  onFirstUse(
    octoprintKind,
    () => (load("./octoprint/driver.ts") as typeof import("./octoprint/driver.ts")).octoprintDriver,
  ),
  onFirstUse(
    moonrakerKind,
    () => (load("./moonraker/driver.ts") as typeof import("./moonraker/driver.ts")).moonrakerDriver,
  ),
] as const;
