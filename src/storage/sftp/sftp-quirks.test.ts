/**
 * What is particular to SFTP on a real OpenSSH sshd: host key verification before any credential,
 * logins, a server that stops in the middle of an upload and the resume after it, a full disk,
 * names the server refuses, pipelined reads, prompt aborts, and a throughput figure for the log.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { silentLogger } from "../../core/logger.ts";
import type { StorageAdapter, UploadToken } from "../adapter.ts";
import { readAll, sourceOf, rejectsWith } from "../../../test/conformance/storage-helpers.ts";
import { run, serversRequired, testOptions } from "../../../test/servers/common.ts";
import { sshdOrReason, type Sshd } from "../../../test/servers/sshd.ts";
import { sftpAdapter, sftpOptionsSchema } from "./sftp.ts";
import { resumeOffset, type SftpToken } from "./upload.ts";

const MiB = 1024 * 1024;
const DEVICE = "nas-test";

const started = await sshdOrReason();
const options = testOptions(started.reason);
const server = (): Sshd => {
  if (!started.sshd) throw new Error(started.reason);
  return started.sshd;
};
after(() => started.sshd?.close());

function open(sshd: Sshd, extra: Record<string, unknown> = {}, root = sshd.uploadRoot): StorageAdapter {
  const parsed = sftpOptionsSchema.parse({
    host: sshd.host,
    port: sshd.port,
    username: sshd.user.name,
    password: sshd.user.password,
    host_key: sshd.hostKeyFingerprint,
    root,
    ...extra,
  });
  return sftpAdapter.create(parsed, { name: DEVICE, logger: silentLogger, baseDir: "/" });
}

async function withAdapter<T>(adapter: StorageAdapter, fn: (a: StorageAdapter) => Promise<T>): Promise<T> {
  try {
    return await fn(adapter);
  } finally {
    await adapter.close();
  }
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Polls `condition` (a server log line, a file) until it holds or `ms` pass. */
async function eventually(condition: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

void describe("logins and host keys", () => {
  // A server of its own: its log then holds only these tests' connections.
  let own: Sshd | undefined;
  before(async () => {
    if (started.sshd) own = (await sshdOrReason()).sshd;
  });
  after(() => own?.close());
  const sshd = () => own ?? server();

  void test(
    "a wrong pinned host key is AUTH showing the offered key, and no password is sent",
    options,
    async () => {
      const wrong = `SHA256:${createHash("sha256").update("another server").digest("base64").replace(/=+$/, "")}`;
      const error = await withAdapter(open(sshd(), { host_key: wrong }), (a) =>
        rejectsWith(a.stat(""), ["AUTH"], new RegExp(`${DEVICE}.*host key`)),
      );
      assert.equal(error.retryable, false);
      assert.ok(error.message.includes(sshd().hostKeyFingerprint), `shows the offered key: ${error.message}`);
      assert.ok(error.message.includes(wrong), "names the pinned key");
      assert.ok(await eventually(() => /\[preauth\]/.test(sshd().log())), "the server saw the client leave");
      assert.doesNotMatch(sshd().log(), /password/i, "no password ever reached the server");
    },
  );

  void test("a wrong password is AUTH naming the device (and the server saw it)", options, async () => {
    const error = await withAdapter(open(sshd(), { password: "not-the-password" }), (a) =>
      rejectsWith(a.stat(""), ["AUTH"], new RegExp(`^${DEVICE}: `)),
    );
    assert.equal(error.retryable, false);
    assert.doesNotMatch(error.message, /not-the-password/);
    assert.ok(await eventually(() => /Failed password for ferry-test/.test(sshd().log())), sshd().log());
  });

  void test("a private key logs in without a password; an unreadable key file is AUTH", options, async () => {
    const key = { password: undefined, private_key_file: sshd().clientKeyFile };
    await withAdapter(open(sshd(), key), async (a) => assert.equal((await a.stat("")).type, "dir"));
    const missing = { password: undefined, private_key_file: join(sshd().uploadRoot, "nope") };
    await withAdapter(open(sshd(), missing), (a) => rejectsWith(a.stat(""), ["AUTH"], /private_key_file/));
  });

  void test(
    "known_hosts: plain and hashed entries work; unknown, changed and revoked keys are AUTH",
    options,
    async () => {
      const s = sshd();
      const dir = s.uploadRoot;
      const viaFile = async (name: string, text: string) => {
        await writeFile(join(dir, name), text);
        return open(s, { host_key: undefined, known_hosts: join(dir, name) });
      };
      await withAdapter(await viaFile("plain", `# comment\n${s.knownHostsLine}\n`), async (a) => {
        assert.equal((await a.stat("")).type, "dir");
      });
      await writeFile(join(dir, "hashed"), `${s.knownHostsLine}\n`);
      await run("ssh-keygen", ["-H", "-f", join(dir, "hashed")]);
      assert.match(await readFile(join(dir, "hashed"), "utf8"), /^\|1\|/, "ssh-keygen hashed the name");
      await withAdapter(open(s, { host_key: undefined, known_hosts: join(dir, "hashed") }), async (a) => {
        assert.equal((await a.stat("")).type, "dir");
      });
      const other = `[127.0.0.1]:${s.port + 1} ${s.knownHostsLine.split(" ").slice(1).join(" ")}\n`;
      await withAdapter(await viaFile("other-port", other), (a) =>
        rejectsWith(a.stat(""), ["AUTH"], /unknown host/),
      );
      const changed = `[127.0.0.1]:${s.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnwDLpnGAeEiNzDzaJ45V3Hg+wI0wd6cV4D1e0+8cZg\n`;
      const error = await withAdapter(await viaFile("changed", changed), (a) =>
        rejectsWith(a.stat(""), ["AUTH"], /does not match/),
      );
      assert.ok(error.message.includes(s.hostKeyFingerprint), error.message);
      await withAdapter(
        await viaFile("revoked", `${s.knownHostsLine}\n@revoked ${s.knownHostsLine}\n`),
        (a) => rejectsWith(a.stat(""), ["AUTH"], /revoked/),
      );
    },
  );

  void test("the options need a password or a key, and a well-formed host_key", () => {
    const base = { host: "127.0.0.1", username: "u", host_key: `SHA256:${"A".repeat(43)}` };
    assert.throws(() => sftpOptionsSchema.parse(base), /password or private_key_file/);
    assert.throws(() => sftpOptionsSchema.parse({ ...base, password: "p", host_key: "md5:aa" }), /SHA256/);
    const parsed = sftpOptionsSchema.parse({ ...base, password: "p" });
    assert.equal(parsed.port, 22);
    assert.doesNotMatch(JSON.stringify(parsed), /"p"/, "the password is a secret");
  });
});

void describe("failures in the middle of things", () => {
  void test(
    "the server stops mid-upload: TRANSIENT/UNAVAILABLE, then a new instance resumes and sends only the rest",
    options,
    async (t) => {
      const sshd = server();
      const data = randomBytes(24 * MiB);
      const path = "outage/big.bin";
      let kept: { bytes: number; token: UploadToken } = { bytes: 0, token: {} };
      let reached: () => void = () => undefined;
      const halfway = new Promise<void>((resolve) => (reached = resolve));
      let resume: () => void = () => undefined;
      const stopped = new Promise<void>((resolve) => (resume = resolve));
      // Full speed to 6 MiB, then a trickle while the server stops (writes are in flight when it
      // goes), and no further than 12 MiB until it is down: the upload cannot end first.
      async function* source() {
        for (let at = 0; at < data.length; at += 64 * 1024) {
          if (at === 6 * MiB) reached();
          if (at === 12 * MiB) await stopped;
          if (at >= 6 * MiB) await new Promise((resolve) => setTimeout(resolve, 1));
          yield data.subarray(at, at + 64 * 1024);
        }
      }
      const first = open(sshd);
      try {
        const upload = await first.openUpload?.(path, { size: data.length, modTime: 1_700_000_000_000 });
        assert.ok(upload);
        kept = { bytes: upload.offset, token: upload.token };
        const sending = upload.finish(source(), { onStored: (stored) => (kept = stored) });
        const outcome = rejectsWith(sending, ["TRANSIENT", "UNAVAILABLE"]);
        await halfway;
        await eventually(() => kept.bytes > 0);
        await sshd.stop();
        resume();
        const error = await outcome;
        assert.equal(error.retryable, true);
        assert.ok(kept.bytes > 0 && kept.bytes <= 12 * MiB, `onStored reported ${kept.bytes}`);
        // While the server is down every call fails as retryable, and the next one reconnects.
        await rejectsWith(first.stat(""), ["UNAVAILABLE", "TRANSIENT"]);
        await sshd.start();
        assert.equal((await first.stat("outage")).type, "dir", "the same instance reconnected");
      } finally {
        await first.close();
      }
      const temps = (await readdir(join(sshd.uploadRoot, "outage"))).filter((n) => n.endsWith(".part"));
      assert.equal(temps.length, 1, "the partial upload stays for the resume");
      const onServer = (await stat(join(sshd.uploadRoot, "outage", temps[0] ?? ""))).size;

      await withAdapter(open(sshd), async (second) => {
        const upload = await second.openUpload?.(path, {
          size: data.length,
          modTime: 1_700_000_000_000,
          resume: kept.token,
        });
        assert.ok(upload);
        t.diagnostic(`onStored ${kept.bytes} B, server held ${onServer} B, resumed at ${upload.offset} B`);
        assert.ok(upload.offset > 0 && upload.offset >= kept.bytes, `resumes at ${upload.offset}`);
        assert.ok(upload.offset <= onServer, "never past what the server holds");
        let sent = 0;
        function* rest() {
          for (let at = upload?.offset ?? 0; at < data.length; at += 64 * 1024) {
            const chunk = data.subarray(at, Math.min(at + 64 * 1024, data.length));
            sent += chunk.length;
            yield chunk;
          }
        }
        const entry = await upload.finish(Readable.from(rest()));
        assert.equal(sent, data.length - upload.offset, "only the rest was sent");
        assert.equal(entry.size, data.length);
        assert.equal(entry.modTime, 1_700_000_000_000);
        assert.equal(sha256(await readAll(second, path)), sha256(data), "the file is whole");
        assert.deepEqual(await readdir(join(sshd.uploadRoot, "outage")), ["big.bin"], "no temp file left");
      });
    },
  );

  void test(
    "a full disk is NO_SPACE, and the failed write leaves no temp file behind",
    options,
    async (t) => {
      const small = await sshdOrReason({ diskBytes: MiB });
      if (!small.sshd) {
        if (serversRequired()) throw new Error(small.reason);
        t.skip(small.reason);
        return;
      }
      try {
        await withAdapter(open(small.sshd), async (a) => {
          const data = randomBytes(3 * MiB);
          await rejectsWith(
            a.write("full/big.bin", sourceOf(data), { size: data.length }),
            ["NO_SPACE"],
            /full\/big\.bin/,
          );
          assert.deepEqual(await readdir(join(small.sshd.uploadRoot, "full")), [], "the temp file is gone");
          const usage = await a.usage?.();
          assert.ok(
            usage?.totalBytes !== undefined && usage.totalBytes <= MiB,
            `usage ${JSON.stringify(usage)}`,
          );
          await a.write("full/small.bin", sourceOf(Buffer.from("fits")), { size: 4 });
        });
      } finally {
        await small.sshd.close();
      }
    },
  );

  void test(
    "a name the server refuses is NAME_INVALID naming it, before any byte goes",
    options,
    async () => {
      await withAdapter(open(server()), async (a) => {
        const name = `${"ø".repeat(150)}.gcode`; // 306 bytes: ext4 and tmpfs take 255
        await rejectsWith(
          a.write(`names/${name}`, sourceOf(Buffer.alloc(10)), { size: 10 }),
          ["NAME_INVALID"],
          new RegExp(name),
        );
        await rejectsWith(a.mkdir(`names/${name}`), ["NAME_INVALID"], new RegExp(name));
        await rejectsWith(
          a.write("names/.ferry-0123456789abcdef.part", sourceOf(Buffer.alloc(1)), { size: 1 }),
          ["NAME_INVALID"],
          /reserved/,
        );
      });
    },
  );

  void test(
    "an abort while bytes flow stops the upload promptly and keeps the old file",
    options,
    async () => {
      await withAdapter(open(server()), async (a) => {
        const old = randomBytes(1000);
        await a.write("abort/file.bin", sourceOf(old), { size: old.length });
        const controller = new AbortController();
        const chunk = randomBytes(64 * 1024);
        let sent = 0;
        function* endless() {
          for (;;) {
            sent += chunk.length;
            if (sent === 4 * MiB) controller.abort();
            yield chunk;
          }
        }
        const began = Date.now();
        const writing = a.write("abort/file.bin", Readable.from(endless()), {
          size: 1024 * MiB,
          signal: controller.signal,
        });
        await rejectsWith(writing, ["ABORTED"]);
        assert.ok(sent < 16 * MiB, `stopped after ${sent} bytes`);
        assert.ok(Date.now() - began < 5000, "promptly");
        assert.equal(sha256(await readAll(a, "abort/file.bin")), sha256(old));
        assert.deepEqual(await readdir(join(server().uploadRoot, "abort")), ["file.bin"]);
      });
    },
  );
});

void describe("where a resume starts", () => {
  const token = (stored: number): SftpToken => ({
    v: 1,
    kind: "sftp",
    target: "a/f",
    temp: "a/.ferry-0123456789abcdef.part",
    size: 100 * MiB,
    modTime: 5000,
    stored,
    window: 2 * MiB,
  });
  void test("at the token's prefix or one window below the server's size, whichever is later", () => {
    // A checkpoint that lags: the server holds 40 MiB, holes can only be in its last window.
    assert.equal(resumeOffset(token(10 * MiB), 100 * MiB, 5000, 40 * MiB), 38 * MiB);
    // A fresh checkpoint: its prefix is known whole.
    assert.equal(resumeOffset(token(39.5 * MiB), 100 * MiB, 5000, 40 * MiB), 39.5 * MiB);
    assert.equal(resumeOffset(token(0), 100 * MiB, 5000, MiB), 0);
    assert.equal(resumeOffset(token(0), 100 * MiB, 5000, 0), 0);
  });
  void test("never on a partial that lost data, is too long, or is for another version", () => {
    assert.equal(resumeOffset(token(10 * MiB), 100 * MiB, 5000, 9 * MiB), "stale");
    assert.equal(resumeOffset(token(0), 100 * MiB, 5000, 101 * MiB), "stale");
    assert.equal(resumeOffset(token(0), 99 * MiB, 5000, MiB), "stale");
    assert.equal(resumeOffset(token(0), 100 * MiB, 6000, MiB), "stale");
    assert.equal(resumeOffset(token(0), 100 * MiB, 5000, undefined), "gone");
  });
});

void describe("transfers", () => {
  void test("a big ranged read comes back in order", options, async () => {
    await withAdapter(open(server()), async (a) => {
      const data = randomBytes(5 * MiB + 123);
      await a.write("reads/big.bin", sourceOf(data), { size: data.length });
      for (const offset of [0, 1, 3 * MiB + 7]) {
        assert.equal(
          sha256(await readAll(a, "reads/big.bin", offset)),
          sha256(data.subarray(offset)),
          `from ${offset}`,
        );
      }
    });
  });

  void test("a stale token (another version) throws its partial away", options, async () => {
    await withAdapter(open(server()), async (a) => {
      const upload = await a.openUpload?.("stale/file.bin", { size: 10, modTime: 1_000_000 });
      assert.ok(upload);
      const { source } = { source: sourceOf(Buffer.alloc(5)) };
      await rejectsWith(upload.finish(source), ["PROTOCOL"]);
      assert.equal((await readdir(join(server().uploadRoot, "stale"))).length, 1, "the partial is there");
      const again = await a.openUpload?.("stale/file.bin", {
        size: 10,
        modTime: 2_000_000,
        resume: upload.token,
      });
      assert.equal(again?.offset, 0);
      assert.deepEqual(await readdir(join(server().uploadRoot, "stale")), [], "the stale partial is gone");
    });
  });

  void test("throughput of a 64 MiB upload (logged, not asserted)", options, async (t) => {
    await withAdapter(open(server()), async (a) => {
      const data = randomBytes(64 * MiB);
      const began = performance.now();
      await a.write("speed/64MiB.bin", sourceOf(data), { size: data.length });
      const seconds = (performance.now() - began) / 1000;
      t.diagnostic(`sftp upload of 64 MiB: ${(data.length / 1e6 / seconds).toFixed(1)} MB/s`);
      assert.equal((await a.stat("speed/64MiB.bin")).size, data.length);
    });
  });
});
