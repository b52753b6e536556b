/** The printer conformance suite for the PrusaLink driver against the PrusaLink simulator (MK4). */
import { describePrinterConformance, virtualPrinterControls } from "../../../test/conformance/printer.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { PRUSALINK_STATES, PrusaLinkSim, type PrusaLinkState } from "../../sim/prusalink/index.ts";
import type { Activity } from "../driver.ts";
import { activityOf, openPrusaLinkDriver } from "./driver.ts";

const PASSWORD = "conformance";
const context = { name: "mk4-sim", logger: silentLogger, baseDir: "/" };

describePrinterConformance("prusalink (MK4 simulator)", {
  open: async () => {
    const clock = { now: 1_700_000_000_000 };
    const sim = await PrusaLinkSim.start({ password: PASSWORD, clock: () => clock.now });
    const open = (password: string) =>
      openPrusaLinkDriver({ url: sim.url, username: "maker", password: new Secret(password) }, context, {
        clock: () => clock.now,
      });
    const driver = open(PASSWORD);
    const states = PRUSALINK_STATES.map((word) => ({
      word,
      // What the real printer's words mean (DESIGN.md §7), written out rather than taken from the driver.
      activity:
        ({ READY: "idle" } as Partial<Record<PrusaLinkState, Activity>>)[word] ??
        (word.toLowerCase() as Activity),
    }));
    // The driver's own table must agree with it.
    for (const { word, activity } of states) {
      if (activityOf(word) !== activity) throw new Error(`activityOf(${word}) is not ${activity}`);
    }
    return {
      driver,
      sim: {
        ...virtualPrinterControls(sim.printer, clock),
        states,
        setState: (word) => Promise.resolve(sim.setState(word as PrusaLinkState)),
        startAtPrinter: (path) => Promise.resolve(sim.startPrint(path)),
      },
      openWithWrongCredentials: () => Promise.resolve(open("not the password")),
      close: async () => {
        await driver.close();
        await sim.close();
      },
    };
  },
});
