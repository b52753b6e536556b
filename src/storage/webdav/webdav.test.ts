/** The storage conformance suite against real Apache mod_dav (Basic and Digest) and nginx dav. */
import { test } from "node:test";
import { describeStorageConformance, type StorageHarness } from "../../../test/conformance/storage.ts";
import { testOptions, Unavailable } from "../../../test/servers/common.ts";
import { startApacheDav, startNginxDav, type DavServer } from "../../../test/servers/webdav.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { openWebdavStorage } from "./webdav.ts";

/** Small chunks, so that the resume tests interrupt an upload after a few of them. */
const CHUNK = 256 * 1024;

interface Server {
  label: string;
  start: () => Promise<DavServer>;
  /** Each server meets another mode: auto (the default), digest, basic. */
  auth: "auto" | "basic" | "digest";
  quirks?: Pick<StorageHarness, "restartsUploads"> & {
    /** Asked of the shared suite (see README): nginx dav-ext leaves dot names out of listings. */
    hidesDotNames?: string;
  };
}

const servers: Server[] = [
  { label: "webdav (Apache mod_dav, Basic)", start: () => startApacheDav({ auth: "basic" }), auth: "auto" },
  {
    label: "webdav (Apache mod_dav, Digest)",
    start: () => startApacheDav({ auth: "digest" }),
    auth: "digest",
  },
  {
    label: "webdav (nginx dav)",
    start: () => startNginxDav(),
    auth: "basic",
    quirks: {
      restartsUploads: "nginx answers a ranged PUT with 501",
      hidesDotNames: "nginx dav-ext skips names that start with a dot in PROPFIND Depth 1",
    },
  },
];

for (const { label, start, auth, quirks } of servers) {
  let server: DavServer;
  try {
    server = await start();
  } catch (error) {
    if (!(error instanceof Unavailable)) throw error;
    const reason = error.message;
    test(label, testOptions(reason), () => {
      throw new Error(reason);
    });
    continue;
  }
  const harness: StorageHarness = {
    open: () =>
      Promise.resolve(
        openWebdavStorage(
          { url: server.url, username: server.username, password: new Secret(server.password), auth },
          { name: "dav-test", logger: silentLogger, baseDir: "/" },
          { chunkBytes: CHUNK },
        ),
      ),
    cleanup: () => server.close(),
    resumeSize: 4 * CHUNK,
    ...quirks,
  };
  describeStorageConformance(label, harness);
}
