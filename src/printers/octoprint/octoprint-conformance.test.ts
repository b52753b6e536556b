/** The printer conformance suite for the OctoPrint driver against the OctoPrint simulator. */
import { describePrinterConformance, virtualPrinterControls } from "../../../test/conformance/printer.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { OctoPrintSim, type OctoPrintState } from "../../sim/octoprint/index.ts";
import type { Activity } from "../driver.ts";
import { activityOf, openOctoPrintDriver } from "./driver.ts";

const KEY = "conformance";
const context = { name: "octo-sim", logger: silentLogger, baseDir: "/" };

/**
 * OctoPrint's words while it is connected to its printer, and what they mean (written out rather
 * than taken from the driver). The words of a closed or opening link are offline, which the
 * driver's own tests cover.
 */
const STATES: readonly { word: OctoPrintState; activity: Activity }[] = [
  { word: "Operational", activity: "idle" },
  { word: "Starting", activity: "printing" },
  { word: "Printing", activity: "printing" },
  { word: "Pausing", activity: "paused" },
  { word: "Paused", activity: "paused" },
  { word: "Resuming", activity: "printing" },
  { word: "Finishing", activity: "printing" },
  { word: "Cancelling", activity: "busy" },
  { word: "Transferring file to SD", activity: "busy" },
  { word: "Error", activity: "error" },
];

describePrinterConformance("octoprint (simulator)", {
  withoutJobIds: "OctoPrint numbers no jobs",
  open: async () => {
    const clock = { now: 1_700_000_000_000 };
    const sim = await OctoPrintSim.start({ apiKey: KEY, clock: () => clock.now });
    const open = (key: string) =>
      openOctoPrintDriver({ url: sim.url, api_key: new Secret(key) }, context, {}, () => clock.now);
    const driver = open(KEY);
    // The driver's own table must agree with it.
    for (const { word, activity } of STATES) {
      if (activityOf(word) !== activity) throw new Error(`activityOf(${word}) is not ${activity}`);
    }
    return {
      driver,
      sim: {
        ...virtualPrinterControls(sim.printer, clock),
        states: STATES,
        setState: (word) => Promise.resolve(sim.setState(word as OctoPrintState)),
        startAtPrinter: async (path) => {
          sim.startPrint(await driver.storage().serverPathOf(path));
        },
      },
      openWithWrongCredentials: () => Promise.resolve(open("not the key")),
      close: async () => {
        await driver.close();
        await sim.close();
      },
    };
  },
});
