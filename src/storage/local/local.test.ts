import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../core/logger.ts";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { localAdapter } from "./local.ts";

const root = await mkdtemp(join(tmpdir(), "ferry-local-"));

describeStorageConformance("local", {
  open: () =>
    Promise.resolve(
      localAdapter.create({ path: "files" }, { name: "local", logger: silentLogger, baseDir: root }),
    ),
  cleanup: () => rm(root, { recursive: true, force: true }),
});
