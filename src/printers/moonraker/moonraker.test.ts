import { after } from "node:test";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { MoonrakerSim } from "../../sim/moonraker/index.ts";
import { moonrakerStorage } from "./storage.ts";

const sim = await MoonrakerSim.start({ apiKey: "conformance" });
after(() => sim.close());

describeStorageConformance("moonraker (simulator)", {
  open: () =>
    Promise.resolve(
      moonrakerStorage.create(
        { url: sim.url, api_key: new Secret("conformance") },
        { name: "klipper-sim", logger: silentLogger, baseDir: "/" },
      ),
    ),
});
