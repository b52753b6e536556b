/** The shared storage conformance suite against a real vsftpd, over plain FTP and explicit FTPS. */
import { after, test } from "node:test";
import { silentLogger } from "../../core/logger.ts";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { testOptions, Unavailable } from "../../../test/servers/common.ts";
import { startVsftpd } from "../../../test/servers/vsftpd.ts";
import { ftpAdapter, ftpOptionsSchema } from "./ftp.ts";

const server = await startVsftpd().catch((error: unknown) => {
  if (error instanceof Unavailable) return error.message;
  throw error;
});

if (typeof server === "string") {
  test("ftp conformance against vsftpd", testOptions(server), () => {
    throw new Error(server);
  });
} else {
  after(() => server.close());
  const open = (extra: Record<string, unknown>) => () =>
    Promise.resolve(
      ftpAdapter.create(ftpOptionsSchema.parse({ ...server.login, ...extra }), {
        name: "vsftpd",
        logger: silentLogger,
        baseDir: "/",
      }),
    );
  // Half of 4 MiB goes before each interrupted upload stalls: well past the socket buffers.
  const resumeSize = 4 * 1024 * 1024;
  describeStorageConformance("ftp (vsftpd, plain)", { open: open({ root: "/plain" }), resumeSize });
  describeStorageConformance("ftp (vsftpd, explicit FTPS)", {
    open: open({ root: "/tls", secure: true, ca_file: server.tls.cert }),
    resumeSize,
  });
}
