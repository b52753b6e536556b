/** The printer conformance suite for the Moonraker driver against the Moonraker simulator. */
import { describePrinterConformance, virtualPrinterControls } from "../../../test/conformance/printer.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { MoonrakerSim, type MoonrakerSimState } from "../../sim/moonraker/index.ts";
import type { Activity } from "../driver.ts";
import { openMoonrakerDriver } from "./driver.ts";

const KEY = "conformance";
const context = { name: "klipper-sim", logger: silentLogger, baseDir: "/" };

/**
 * The simulator's words (print_stats.state while Klippy is ready, else Klippy's own state) and
 * what they mean, written out rather than taken from the driver. "disconnected" (Klippy not
 * connected to Moonraker) is offline, which the driver's own tests cover.
 */
const STATES: readonly { word: MoonrakerSimState; activity: Activity }[] = [
  { word: "standby", activity: "idle" },
  { word: "busy", activity: "busy" },
  { word: "startup", activity: "busy" },
  { word: "printing", activity: "printing" },
  { word: "paused", activity: "paused" },
  { word: "complete", activity: "finished" },
  { word: "cancelled", activity: "stopped" },
  { word: "error", activity: "error" },
  { word: "klippy_error", activity: "error" },
];

describePrinterConformance("moonraker (simulator)", {
  open: async () => {
    const clock = { now: 1_700_000_000_000 };
    const sim = await MoonrakerSim.start({ apiKey: KEY, clock: () => clock.now });
    const open = (key: string) =>
      openMoonrakerDriver({ url: sim.url, api_key: new Secret(key) }, context, {}, () => clock.now);
    const driver = open(KEY);
    return {
      driver,
      sim: {
        ...virtualPrinterControls(sim.printer, clock),
        states: STATES,
        setState: (word) => Promise.resolve(sim.setState(word as MoonrakerSimState)),
        startAtPrinter: (path) => Promise.resolve(sim.startPrint(path)),
      },
      openWithWrongCredentials: () => Promise.resolve(open("not the key")),
      close: async () => {
        await driver.close();
        await sim.close();
      },
    };
  },
});
