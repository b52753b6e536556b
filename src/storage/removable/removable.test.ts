import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { StagedVolume } from "./test-support.ts";

const volume = await StagedVolume.create();
await volume.attach();

describeStorageConformance("removable (staged volume)", {
  open: () => Promise.resolve(volume.open()),
  cleanup: () => volume.cleanup(),
});
