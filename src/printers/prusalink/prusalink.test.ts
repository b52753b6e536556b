import { after } from "node:test";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { PrusaLinkSim } from "../../sim/prusalink/index.ts";
import { prusalinkStorage } from "./storage.ts";

const sim = await PrusaLinkSim.start({ password: "conformance" });
after(() => sim.close());

describeStorageConformance("prusalink (MK4 simulator)", {
  open: () =>
    Promise.resolve(
      prusalinkStorage.create(
        { url: sim.url, username: "maker", password: new Secret("conformance") },
        { name: "mk4-sim", logger: silentLogger, baseDir: "/" },
      ),
    ),
});
