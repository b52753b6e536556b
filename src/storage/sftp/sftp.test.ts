/** The shared storage conformance suite against a real OpenSSH sshd (internal-sftp), by password and by key. */
import { after, test } from "node:test";
import { silentLogger } from "../../core/logger.ts";
import { describeStorageConformance } from "../../../test/conformance/storage.ts";
import { testOptions } from "../../../test/servers/common.ts";
import { sshdOrReason } from "../../../test/servers/sshd.ts";
import { sftpAdapter, sftpOptionsSchema } from "./sftp.ts";

const { sshd, reason } = await sshdOrReason();

if (sshd === undefined) {
  test("sftp conformance against OpenSSH sshd", testOptions(reason), () => {
    throw new Error(reason);
  });
} else {
  after(() => sshd.close());
  const open = (extra: Record<string, unknown>) => () =>
    Promise.resolve(
      sftpAdapter.create(
        sftpOptionsSchema.parse({
          host: sshd.host,
          port: sshd.port,
          username: sshd.user.name,
          host_key: sshd.hostKeyFingerprint,
          ...extra,
        }),
        { name: "sshd", logger: silentLogger, baseDir: "/" },
      ),
    );
  // Half of 8 MiB goes before each interrupted upload stalls: twice the writer's window in flight.
  const resumeSize = 8 * 1024 * 1024;
  describeStorageConformance("sftp (OpenSSH, password)", {
    open: open({ password: sshd.user.password, root: `${sshd.uploadRoot}/password` }),
    resumeSize,
  });
  describeStorageConformance("sftp (OpenSSH, public key, known_hosts)", {
    open: open({
      private_key_file: sshd.clientKeyFile,
      host_key: undefined,
      known_hosts: sshd.knownHostsFile,
      root: `${sshd.uploadRoot}/key`,
    }),
    resumeSize,
  });
}
