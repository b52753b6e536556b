/** The shared storage conformance suite against a real Ceph RGW (one-node memstore cluster). */
import { after, test } from "node:test";
import { silentLogger } from "../../core/logger.ts";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { startCephRgw } from "../../../test/servers/ceph-rgw.ts";
import { testOptions, Unavailable } from "../../../test/servers/common.ts";
import { s3Adapter, s3OptionsSchema } from "./s3.ts";

const server = await startCephRgw().catch((error: unknown) => {
  if (error instanceof Unavailable) return error.message;
  throw error;
});

if (typeof server === "string") {
  test("s3 conformance against Ceph RGW", testOptions(server), () => {
    throw new Error(server);
  });
} else {
  after(() => server.close());
  await server.createBucket("conformance");
  const MiB = 1024 * 1024;
  describeStorageConformance("s3 (Ceph RGW)", {
    open: () =>
      Promise.resolve(
        s3Adapter.create(
          s3OptionsSchema.parse({
            endpoint: server.endpoint,
            bucket: "conformance",
            access_key_id: server.accessKeyId,
            secret_access_key: server.secretAccessKey,
            force_path_style: true,
            root: "suite",
            // Small parts: the large round trip is a multipart upload of 3 parts, the resumed one too.
            part_size: 5 * MiB,
          }),
          { name: "rgw", logger: silentLogger, baseDir: "/" },
        ),
      ),
    largeSize: 12 * MiB,
    resumeSize: 15 * MiB,
  });
}
