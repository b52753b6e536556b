/**
 * No file stays open across a server outage. `ferry serve` kept sending while an SFTP server was
 * down, and every refused upload left its local source file open until the garbage collector
 * closed it ("Closing file descriptor N on garbage collection"): this counts the process's open
 * descriptors (/proc/self/fd) across an outage that starts in the middle of an upload.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline, Transform, type Readable } from "node:stream";
import { after, test } from "node:test";
import { silentLogger } from "../../core/logger.ts";
import { testOptions } from "../../../test/servers/common.ts";
import { sshdOrReason } from "../../../test/servers/sshd.ts";
import { sftpAdapter, sftpOptionsSchema } from "./sftp.ts";

const MiB = 1024 * 1024;
const started = await sshdOrReason();
after(() => started.sshd?.close());

const openFds = () => readdirSync("/proc/self/fd").length;

/** Polls `condition` until it holds or `ms` pass; then the last answer. */
async function eventually(condition: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

/** A local file as the local adapter reads one: a FileHandle's stream (closed when destroyed). */
async function localSource(file: string): Promise<Readable> {
  return (await open(file, "r")).createReadStream({ highWaterMark: 64 * 1024 });
}

test(
  "an SFTP server down mid-transfer and for twenty more uploads leaves no file open",
  { ...testOptions(started.reason), timeout: 120_000 },
  async () => {
    const sshd = started.sshd;
    assert.ok(sshd);
    const dir = await mkdtemp(join(tmpdir(), "ferry-sftp-fds-"));
    const adapter = sftpAdapter.create(
      sftpOptionsSchema.parse({
        host: sshd.host,
        port: sshd.port,
        username: sshd.user.name,
        password: sshd.user.password,
        host_key: sshd.hostKeyFingerprint,
        root: sshd.uploadRoot,
      }),
      { name: "nas", logger: silentLogger, baseDir: "/" },
    );
    try {
      const big = join(dir, "big.bin");
      await writeFile(big, randomBytes(16 * MiB));
      const small = Array.from({ length: 20 }, (_, i) => join(dir, `log-${i}.bin`));
      for (const file of small) await writeFile(file, randomBytes(256 * 1024));

      await adapter.write("fds/warm.bin", await localSource(small[0] ?? ""), { size: 256 * 1024 });
      const baseline = openFds();

      // The server stops once 4 MiB of the big file went out; the rest waits until it is down.
      let stopping: Promise<void> | undefined;
      let seen = 0;
      const gate = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          seen += chunk.length;
          if (seen <= 4 * MiB) return done(null, chunk);
          stopping ??= sshd.stop();
          stopping.then(
            () => done(null, chunk),
            (error: unknown) => done(error as Error),
          );
        },
      });
      const file = await localSource(big);
      pipeline(file, gate, () => undefined);
      assert.ok(adapter.capabilities.resumableWrite !== "none" && adapter.openUpload !== undefined);
      const upload = await adapter.openUpload("fds/big.bin", { size: 16 * MiB });
      await assert.rejects(upload.finish(gate));
      await stopping;

      // Down: every upload is refused, each with a local file opened for it.
      const sources: Readable[] = [file];
      for (const [i, path] of small.entries()) {
        const source = await localSource(path);
        sources.push(source);
        await assert.rejects(adapter.write(`fds/log-${i}.bin`, source, { size: 256 * 1024 }));
      }
      assert.ok(
        await eventually(() => openFds() <= baseline),
        `open descriptors grew from ${baseline} to ${openFds()} while the server was down`,
      );

      const closed = await eventually(() => sources.every((s) => s.closed));
      assert.ok(closed, `${sources.filter((s) => !s.closed).length} of ${sources.length} sources left open`);

      // Back: uploads go through again, and still nothing is left open.
      await sshd.start();
      await adapter.write("fds/after.bin", await localSource(small[1] ?? ""), { size: 256 * 1024 });
      assert.ok(await eventually(() => openFds() <= baseline + 1), `${openFds()} open, ${baseline} before`);
    } finally {
      await adapter.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
