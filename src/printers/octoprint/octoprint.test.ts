import { after } from "node:test";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { OctoPrintSim } from "../../sim/octoprint/index.ts";
import { octoprintStorage } from "./storage.ts";

const sim = await OctoPrintSim.start({ apiKey: "conformance" });
after(() => sim.close());

describeStorageConformance("octoprint (simulator)", {
  open: () =>
    Promise.resolve(
      octoprintStorage.create(
        { url: sim.url, api_key: new Secret("conformance") },
        { name: "octo-sim", logger: silentLogger, baseDir: "/" },
      ),
    ),
});
