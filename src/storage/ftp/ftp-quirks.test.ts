/** What the ftp adapter does beyond the shared suite, and how it fails, against a real vsftpd. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { Client, FTPError } from "basic-ftp";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import type { StorageAdapter, UploadToken } from "../adapter.ts";
import {
  collect,
  expectContent,
  expectFerryError,
  put,
  readAll,
  sourceOf,
} from "../../../test/conformance/storage-helpers.ts";
import { serversRequired, testOptions, tlsCertificate, Unavailable } from "../../../test/servers/common.ts";
import { startVsftpd, type Vsftpd } from "../../../test/servers/vsftpd.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { replyCode } from "./errors.ts";
import { ftpAdapter, ftpOptionsSchema } from "./ftp.ts";

const orReason = (error: unknown) => {
  if (error instanceof Unavailable) return error.message;
  throw error;
};
const started = await startVsftpd().catch(orReason);
const reason = typeof started === "string" ? started : undefined;
const options = testOptions(reason);
const opened: StorageAdapter[] = [];
after(async () => {
  for (const adapter of opened) await adapter.close();
  if (typeof started !== "string") await started.close();
});

const server = (): Vsftpd => {
  if (typeof started === "string") throw new Error(started);
  return started;
};
/** An adapter on the server's "/q" folder, named "box" in messages. */
const open = (extra: Record<string, unknown> = {}, on: Vsftpd = server()): StorageAdapter => {
  const adapter = ftpAdapter.create(ftpOptionsSchema.parse({ ...on.login, root: "/q", ...extra }), {
    name: "box",
    logger: silentLogger,
    baseDir: "/",
  });
  opened.push(adapter);
  return adapter;
};
const onDisk = (...parts: string[]) => join(server().uploadRoot, "q", ...parts);
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const rejectsWith = async (action: Promise<unknown>, code: string, pattern: RegExp) => {
  await assert.rejects(action, (error: unknown) => {
    assert.ok(isFerryError(error), `expected a FerryError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
};

const MiB = 1024 * 1024;

/**
 * A source that gives `data` in 64 KiB chunks up to `gate` bytes, then nothing more until
 * `release()`: however fast or slow the machine, the upload cannot finish before the test lets it.
 */
function gated(data: Buffer, gate: number) {
  let at = 0;
  let open = false;
  let held = false;
  const give = () => {
    if (source.destroyed) return;
    if (at >= data.length) return void source.push(null);
    const chunk = data.subarray(at, at + 64 * 1024);
    at += chunk.length;
    source.push(chunk);
  };
  const source: Readable = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (at >= gate && at < data.length && !open) held = true;
      else give();
    },
  });
  const release = () => {
    open = true;
    if (held) give();
    held = false;
  };
  return { source, release, taken: () => at };
}

describe("ftp adapter against vsftpd", () => {
  it("refuses a wrong password with AUTH naming the device", options, async () => {
    const wrong = open({ password: "not-the-password" });
    await assert.rejects(wrong.stat(""), (error: unknown) => {
      assert.ok(isFerryError(error, "AUTH"), String(error));
      assert.equal(error.retryable, false);
      assert.match(error.message, /^box: .*refused the login as "ferry-test" \(530 Login incorrect\.\)/);
      assert.doesNotMatch(error.message, /not-the-password/);
      return true;
    });
  });

  it("refuses a self-signed server without ca_file, and a certificate of another CA", options, async () => {
    const other = await mkdtemp(join(tmpdir(), "ferry-other-ca-"));
    try {
      const noCa = open({ secure: true });
      await rejectsWith(
        put(noCa, "tls/never.gcode", Buffer.from("x")),
        "AUTH",
        /not trusted.*self-signed.*set ca_file/,
      );
      const wrongCa = open({ secure: true, ca_file: (await tlsCertificate(other)).cert });
      await rejectsWith(
        put(wrongCa, "tls/never.gcode", Buffer.from("x")),
        "AUTH",
        /TLS certificate is not trusted/,
      );
      assert.equal(existsSync(onDisk("tls")), false, "nothing was written");
      const wrongHost = open({ secure: true, ca_file: server().tls.cert, host: "localhost" });
      await rejectsWith(wrongHost.stat(""), "AUTH", /another host name/);
      const right = open({ secure: true, ca_file: server().tls.cert });
      await put(right, "tls/ok.gcode", Buffer.from("ok"));
      await expectContent(right, "tls/ok.gcode", Buffer.from("ok"));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it(
    "fails an upload cut by a server crash (UNAVAILABLE), then resumes it from what the server kept",
    options,
    async () => {
      const path = "crash/big.gcode";
      const data = randomBytes(6 * MiB);
      const first = open({ secure: true, ca_file: server().tls.cert });
      const upload = await first.openUpload?.(path, { size: data.length });
      assert.ok(upload);
      let kept: { bytes: number; token: UploadToken } = { bytes: 0, token: upload.token };
      const overstated: string[] = [];
      // The source stops at 2 MiB until the server is down: the crash always comes mid-upload.
      const { source, release } = gated(data, 2 * MiB);
      const sending = upload.finish(source, {
        onStored: (state) => {
          // Never more than the server holds: the temp file on disk has at least as much.
          const temp = readdirSync(onDisk("crash")).find((name) => name.endsWith(".part")) ?? "";
          const onServer = statSync(onDisk("crash", temp)).size;
          if (onServer < state.bytes) overstated.push(`${state.bytes} reported, ${onServer} stored`);
          kept = state;
        },
      });
      // Settled, not asserted, until the server is back: a failed assertion must not end the test
      // while the server is down.
      let settled = false;
      const failed = sending.then(
        () => undefined,
        (error: unknown) => error,
      );
      void failed.then(() => (settled = true));
      await waitFor("the server to hold 1 MiB of the upload", () => {
        if (settled) throw new Error("the upload ended before the server held 1 MiB");
        return kept.bytes >= MiB;
      });
      await server().stop();
      release();
      const error = await failed;
      await server().start();
      assert.deepEqual(overstated, [], "onStored reported more than the server held");
      assert.ok(isFerryError(error), `the upload failed with a FerryError: ${String(error)}`);
      assert.ok(["UNAVAILABLE", "TRANSIENT"].includes(error.code), error.message);
      assert.equal(error.retryable, true);
      assert.deepEqual(
        readdirSync(onDisk("crash")).filter((name) => !name.endsWith(".part")),
        [],
        "no final file",
      );

      const second = open({ secure: true, ca_file: server().tls.cert });
      const resumed = await second.openUpload?.(path, { size: data.length, resume: kept.token });
      assert.ok(resumed);
      assert.ok(
        resumed.offset > 0 && resumed.offset >= kept.bytes,
        `resumes at ${resumed.offset}, ${kept.bytes} kept`,
      );
      assert.ok(resumed.offset < data.length, "the crash stopped it short");
      const rest = sourceOf(data.subarray(resumed.offset));
      let sent = 0;
      rest.on("data", (chunk: Buffer) => (sent += chunk.length));
      const entry = await resumed.finish(rest);
      assert.equal(sent, data.length - resumed.offset, "sends only the rest");
      assert.equal(entry.size, data.length);
      assert.equal(sha256(await readAll(second, path)), sha256(data));
      assert.deepEqual(readdirSync(onDisk("crash")), ["big.gcode"], "the temp file became the file");
    },
  );

  it(
    "only renames a partial that already holds every byte (a crash between 226 and RNTO)",
    options,
    async () => {
      const adapter = open();
      const data = randomBytes(5000);
      const upload = await adapter.openUpload?.("whole/file.gcode", { size: data.length });
      assert.ok(upload);
      await adapter.mkdir("whole");
      const temp = String(upload.token.temp);
      await writeFile(onDisk("whole", temp), data);
      const again = await open().openUpload?.("whole/file.gcode", {
        size: data.length,
        resume: upload.token,
      });
      assert.equal(again?.offset, data.length);
      await again.finish(sourceOf(Buffer.alloc(0)));
      assert.deepEqual(readdirSync(onDisk("whole")), ["file.gcode"]);
      assert.equal(sha256(await readAll(adapter, "whole/file.gcode")), sha256(data));
    },
  );

  it("reconnects once when the server restarted while the adapter was idle", options, async () => {
    const adapter = open();
    await put(adapter, "idle/a.gcode", Buffer.from("before"));
    await server().stop();
    await server().start();
    await expectContent(adapter, "idle/a.gcode", Buffer.from("before"));
  });

  for (const secure of [false, true]) {
    it(
      `reports a full disk as NO_SPACE and leaves nothing behind (${secure ? "FTPS" : "plain"})`,
      options,
      async (t) => {
        const folder = secure ? "full-tls" : "full-plain";
        const unmountable = await server()
          .smallDisk(join("q", folder), 1024 * 1024)
          .then(() => undefined, orReason);
        if (unmountable !== undefined) {
          if (!serversRequired()) return t.skip(unmountable);
          throw new Error(unmountable);
        }
        const adapter = open(secure ? { secure: true, ca_file: server().tls.cert } : {});
        await put(adapter, `${folder}/old.gcode`, Buffer.from("old"));
        await rejectsWith(
          put(adapter, `${folder}/old.gcode`, randomBytes(2 * 1024 * 1024)),
          "NO_SPACE",
          new RegExp(`^box: ${folder}/old.gcode: .*451 Failure writing`),
        );
        assert.deepEqual(readdirSync(onDisk(folder)), ["old.gcode"], "the temp file is gone");
        await expectContent(adapter, `${folder}/old.gcode`, Buffer.from("old"));
      },
    );
  }

  it("refuses a name longer than the filesystem takes, as vsftpd does (NAME_INVALID)", options, async () => {
    const long = "n".repeat(256);
    // What vsftpd itself answers for such a name: 553 to STOR, 550 to RNTO.
    const raw = new Client();
    try {
      await raw.access({ ...server().login, user: server().user.name });
      await raw.ensureDir("/q/names");
      await assert.rejects(
        raw.uploadFrom(sourceOf(Buffer.from("x")), `/q/names/${long}`),
        (error: unknown) => {
          assert.ok(error instanceof FTPError && error.code === 553, String(error));
          return true;
        },
      );
    } finally {
      raw.close();
    }
    const adapter = open();
    await rejectsWith(
      put(adapter, `names/${long}`, Buffer.from("x")),
      "NAME_INVALID",
      new RegExp(`"${long}" is longer than 255 bytes`),
    );
    await rejectsWith(adapter.mkdir(`names/${long}/sub`), "NAME_INVALID", /longer than 255 bytes/);
    assert.deepEqual(readdirSync(onDisk("names")), []);
  });

  it("maps vsftpd's refusal of a path past its 4096-byte command line to NAME_INVALID", options, async () => {
    const adapter = open({ connections: 1 });
    const deep = Array.from({ length: 17 }, (_, i) => `${String(i).padStart(2, "0")}${"d".repeat(248)}`).join(
      "/",
    );
    await rejectsWith(
      put(adapter, `${deep}/file.gcode`, Buffer.from("x")),
      "NAME_INVALID",
      /500 Input line too long/,
    );
    // vsftpd hung up on that connection: the next operation gets a new one.
    await put(adapter, "after-long/ok.gcode", Buffer.from("ok"));
    await expectContent(adapter, "after-long/ok.gcode", Buffer.from("ok"));
  });

  it("refuses CR, LF and NUL in names, which an FTP command line cannot carry", options, async () => {
    const adapter = open();
    for (const name of ["a\rb.gcode", "a\nb.gcode", "a\0b.gcode"]) {
      await rejectsWith(put(adapter, `ctl/${name}`, Buffer.from("x")), "NAME_INVALID", /FTP cannot send/);
    }
  });

  it("reads exactly the tail from an offset (REST), plain and FTPS", options, async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    for (const adapter of [open(), open({ secure: true, ca_file: server().tls.cert })]) {
      await put(adapter, "tail/file.gcode", data);
      for (const offset of [1, 1024 * 1024 + 7, data.length - 1, data.length]) {
        const tail = await readAll(adapter, "tail/file.gcode", offset);
        assert.equal(tail.length, data.length - offset, `length from ${offset}`);
        assert.equal(sha256(tail), sha256(data.subarray(offset)), `bytes from ${offset}`);
      }
    }
  });

  it("an abort closes the transfer's connection and the pool goes on with a new one", options, async () => {
    const adapter = open({ connections: 1 });
    const data = randomBytes(8 * MiB);
    const upload = await adapter.openUpload?.("abort/file.gcode", { size: data.length });
    assert.ok(upload);
    const controller = new AbortController();
    let stored = false;
    const { source, release, taken } = gated(data, 2 * MiB);
    const sending = upload.finish(source, { signal: controller.signal, onStored: () => (stored = true) });
    const outcome = expectFerryError(sending, "ABORTED", "aborted upload");
    await waitFor("the server to report stored bytes", () => stored);
    controller.abort();
    await outcome;
    // The transfer really stopped: the source is closed, so no more bytes can go, even once it would give them.
    assert.ok(source.destroyed, "the abort closed the source");
    const read = taken();
    release();
    assert.equal(taken(), read, "the source is no longer read");
    const temp = readdirSync(onDisk("abort")).find((name) => name.endsWith(".part")) ?? "";
    assert.ok(statSync(onDisk("abort", temp)).size <= read, "the server holds no more than was read");
    await upload.abort();
    assert.deepEqual(readdirSync(onDisk("abort")), [], "abort() removed the partial file");
    // A read stopped early by its reader, on the same single connection.
    await put(adapter, "abort/big.gcode", randomBytes(4 * 1024 * 1024));
    const stream = await adapter.read("abort/big.gcode");
    for await (const _ of stream) break;
    await put(adapter, "abort/after.gcode", Buffer.from("after"));
    await expectContent(adapter, "abort/after.gcode", Buffer.from("after"));
  });

  it("lists sizes without LIST's coarse times, while stat gives MDTM's seconds", options, async () => {
    const adapter = open();
    const modTime = Date.UTC(2020, 5, 7, 8, 9, 10, 500);
    await put(adapter, "times/a.gcode", Buffer.from("abc"), { modTime });
    const [listed] = await collect(adapter.list("times"));
    assert.deepEqual(listed, { path: "times/a.gcode", type: "file", size: 3 });
    assert.equal((await adapter.stat("times/a.gcode")).modTime, Date.UTC(2020, 5, 7, 8, 9, 10));
    assert.equal(Math.round(statSync(onDisk("times", "a.gcode")).mtimeMs), Date.UTC(2020, 5, 7, 8, 9, 10));
  });

  it(
    "hides temp files, refuses their names, and removes a folder kept only by stale ones",
    options,
    async () => {
      const adapter = open();
      const temp = ".ferry-0123456789abcdef.part";
      await put(adapter, "temps/real.gcode", Buffer.from("real"));
      await writeFile(onDisk("temps", temp), "half");
      assert.deepEqual(
        (await collect(adapter.list("temps"))).map((e) => e.path),
        ["temps/real.gcode"],
      );
      await rejectsWith(adapter.stat(`temps/${temp}`), "NAME_INVALID", /reserved for Ferry's temp files/);
      await adapter.remove("temps/real.gcode");
      await rejectsWith(adapter.remove("temps"), "NOT_EMPTY", /not empty/);
      const hourAgo = new Date(Date.now() - 3_600_000);
      await utimes(onDisk("temps", temp), hourAgo, hourAgo);
      await adapter.remove("temps");
      assert.equal(existsSync(onDisk("temps")), false);
    },
  );

  it(
    "moves by RNFR/RNTO, making parents and replacing a file; mkdir over a file is EXISTS",
    options,
    async () => {
      const adapter = open();
      await put(adapter, "move/a.gcode", Buffer.from("a"));
      await put(adapter, "move/deep/b.gcode", Buffer.from("old b"));
      await adapter.move?.("move/a.gcode", "move/deep/b.gcode");
      await expectContent(adapter, "move/deep/b.gcode", Buffer.from("a"));
      await adapter.move?.("move/deep", "move/new/parents/deep");
      await expectContent(adapter, "move/new/parents/deep/b.gcode", Buffer.from("a"));
      await rejectsWith(
        adapter.move?.("move/nope.gcode", "move/x.gcode") ?? Promise.resolve(),
        "NOT_FOUND",
        /nope/,
      );
      await rejectsWith(adapter.mkdir("move/new/parents/deep/b.gcode"), "EXISTS", /a file has the name/);
    },
  );

  it("speaks implicit FTPS (TLS from the first byte) when secure is implicit", options, async () => {
    const implicit = await startVsftpd({ implicitTls: true });
    try {
      const adapter = open({ secure: "implicit", ca_file: implicit.tls.cert }, implicit);
      await put(adapter, "implicit/a.gcode", Buffer.from("tls only"));
      await expectContent(adapter, "implicit/a.gcode", Buffer.from("tls only"));
      await adapter.close();
    } finally {
      await implicit.close();
    }
  });
});

describe("ftp reply codes", () => {
  it("maps what vsftpd and others answer", () => {
    assert.equal(replyCode(530, "530 Login incorrect.", "login"), "AUTH");
    assert.equal(replyCode(451, "451 Failure writing to local file.", "upload"), "NO_SPACE");
    assert.equal(replyCode(451, "451 Failure reading local file.", "read"), "TRANSIENT");
    assert.equal(replyCode(452, "452 Insufficient storage space.", "upload"), "NO_SPACE");
    assert.equal(replyCode(552, "552 Quota exceeded.", "upload"), "NO_SPACE");
    assert.equal(
      replyCode(421, "421 There are too many connections from your internet address.", "connect"),
      "BUSY",
    );
    assert.equal(replyCode(421, "421 Timeout.", "list"), "UNAVAILABLE");
    assert.equal(replyCode(550, "550 Failed to open file.", "read"), "NOT_FOUND");
    assert.equal(replyCode(550, "550 Permission denied.", "read"), "PERMISSION");
    assert.equal(replyCode(553, "553 Could not create file.", "rename"), "NAME_INVALID");
    assert.equal(replyCode(500, "500 Input line too long.", "mkdir"), "NAME_INVALID");
    assert.equal(replyCode(502, "502 Command not implemented.", "set-time"), "UNSUPPORTED");
    assert.equal(replyCode(426, "426 Failure writing network stream.", "read"), "TRANSIENT");
  });
});
