import { randomUUID } from "node:crypto";
import { silentLogger } from "../../core/logger.ts";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { dropMemoryVolume, memoryAdapter } from "./memory.ts";

const name = `conformance-${randomUUID()}`;

describeStorageConformance("memory", {
  open: () => Promise.resolve(memoryAdapter.create({}, { name, logger: silentLogger, baseDir: "/" })),
  cleanup: () => {
    dropMemoryVolume(name);
    return Promise.resolve();
  },
});
