import assert from "node:assert/strict";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { silentLogger } from "../../core/logger.ts";
import { basename, normalizePath } from "../../core/paths.ts";
import { UploadFormSim } from "../../sim/upload-form/index.ts";
import { httpPostAdapter } from "./http-post.ts";

// The real protocol peer of a web form is a web form: the simulator parses uploads with busboy.
const sim = await UploadFormSim.start({ requiredFields: ["email"] });
const options = httpPostAdapter.optionsSchema.parse({
  url: sim.uploadUrl,
  file_field: "filearg",
  // The path rides in a field, so that what the site received can be found by path.
  fields: { email: "ops@example.com", description: "{path}" },
});

describeStorageConformance("http-post (upload-form simulator)", {
  open: () =>
    Promise.resolve(httpPostAdapter.create(options, { name: "logs", logger: silentLogger, baseDir: "/" })),
  received: async (path) => {
    const wanted = normalizePath(path).normalize("NFC");
    const found = sim
      .received()
      .filter((upload) => upload.fields.description?.normalize("NFC") === wanted)
      .at(-1);
    if (!found) return undefined;
    assert.equal(found.filename.normalize("NFC"), basename(wanted), `${wanted}: the name arrived intact`);
    return sim.content(found.id);
  },
  cleanup: () => sim.close(),
});
