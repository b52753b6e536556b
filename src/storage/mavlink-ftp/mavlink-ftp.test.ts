/** The shared storage conformance suite against the simulated flight controller (PX4 layout, UDP). */
import { after } from "node:test";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { startRig } from "./test-support.ts";

const rig = await startRig();
after(() => rig.close());

describeStorageConformance("mavlink-ftp (simulated PX4 over UDP)", {
  open: () => Promise.resolve(rig.open()),
  suffix: ".ulg",
  largeSize: 256 * 1024,
  timeoutMs: 60_000,
});
