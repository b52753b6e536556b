/** What the local adapter does beyond the shared suite: the filesystem's own ways. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import type { StorageAdapter } from "../adapter.ts";
import {
  collect,
  expectFerryError,
  put,
  readAll,
  stallingSource,
} from "../../../test/conformance/storage-helpers.ts";
import { fsError } from "./errors.ts";
import { localAdapter } from "./local.ts";

let base: string;
let root: string;
let local: StorageAdapter;
const TEMP = ".ferry-0123456789abcdef.part";

before(async () => {
  base = await fs.mkdtemp(join(tmpdir(), "ferry-quirks-"));
  root = join(base, "files");
  local = localAdapter.create({ path: "files" }, { name: "quirks", logger: silentLogger, baseDir: base });
});
after(() => fs.rm(base, { recursive: true, force: true }));

/** Names on disk in a folder of the adapter. */
const onDisk = (dir: string) => fs.readdir(join(root, dir));

describe("local adapter quirks", () => {
  it("resolves a relative path against the config file's folder", async () => {
    await put(local, "a.txt", Buffer.from("a"));
    assert.equal(await fs.readFile(join(base, "files", "a.txt"), "utf8"), "a");
  });

  it("finds, replaces and removes a file stored in NFD by its NFC name", async () => {
    const nfc = "Čeština ёж.gcode".normalize("NFC");
    await fs.mkdir(join(root, "nfd"), { recursive: true });
    await fs.writeFile(join(root, "nfd", nfc.normalize("NFD")), "from a Mac");
    assert.equal((await local.stat(`nfd/${nfc}`)).size, 10);
    assert.equal((await readAll(local, `nfd/${nfc}`)).toString(), "from a Mac");
    // Opened at once with its entry: the same file, named as stored, as stat names it.
    const opened = await local.readWithEntry?.(`nfd/${nfc}`);
    assert.ok(opened);
    assert.deepEqual(opened.entry, await local.stat(`nfd/${nfc}`));
    assert.equal(Buffer.concat(await opened.body.toArray()).toString(), "from a Mac");
    await put(local, `nfd/${nfc}`, Buffer.from("replaced"));
    assert.deepEqual(await onDisk("nfd"), [nfc.normalize("NFD")], "replaced in place, no NFC twin");
    assert.equal(await fs.readFile(join(root, "nfd", nfc.normalize("NFD")), "utf8"), "replaced");
    await local.remove(`nfd/${nfc}`);
    assert.deepEqual(await onDisk("nfd"), []);
  });

  it("finds a folder stored in NFD by its NFC name", async () => {
    const folder = "Ünïcode".normalize("NFC");
    await fs.mkdir(join(root, folder.normalize("NFD"), "x"), { recursive: true });
    await put(local, `${folder}/x/f.gcode`, Buffer.from("f"));
    assert.deepEqual(await fs.readdir(join(root, folder.normalize("NFD"), "x")), ["f.gcode"]);
    const listed = await collect(local.list(folder));
    assert.deepEqual(
      listed.map((e) => e.path),
      [`${folder.normalize("NFD")}/x`],
    );
  });

  it("hides Ferry's temp files and refuses their names", async () => {
    await fs.mkdir(join(root, "temps"), { recursive: true });
    await fs.writeFile(join(root, "temps", TEMP), "half a file");
    await fs.writeFile(join(root, "temps", "real.gcode"), "whole");
    assert.deepEqual(
      (await collect(local.list("temps"))).map((e) => e.path),
      ["temps/real.gcode"],
    );
    await expectFerryError(put(local, `temps/${TEMP}`, Buffer.from("x")), "NAME_INVALID", "temp name");
    await expectFerryError(local.stat(`temps/${TEMP}`), "NAME_INVALID", "temp name");
  });

  it("leaves no temp file behind after a failed write", async () => {
    await put(local, "failed/old.gcode", Buffer.from("old"));
    await expectFerryError(
      put(local, "failed/old.gcode", Buffer.from("short"), { size: 99 }),
      "PROTOCOL",
      "short",
    );
    assert.deepEqual(await onDisk("failed"), ["old.gcode"]);
    assert.equal(await fs.readFile(join(root, "failed", "old.gcode"), "utf8"), "old");
  });

  it("removes its temp file when a write is aborted midway", async () => {
    await put(local, "aborted/old.gcode", Buffer.from("old"));
    const controller = new AbortController();
    const { source, consumed } = stallingSource(Buffer.alloc(64 * 1024));
    const writing = local.write("aborted/old.gcode", source, { size: 1 << 20, signal: controller.signal });
    const outcome = expectFerryError(writing, "ABORTED", "aborted");
    await consumed;
    assert.equal((await onDisk("aborted")).length, 2, "the temp file exists while writing");
    controller.abort();
    await outcome;
    assert.deepEqual(await onDisk("aborted"), ["old.gcode"]);
  });

  it("leaves the old file when the writing process is killed", async () => {
    await put(local, "killed/file.gcode", Buffer.from("old"));
    const script = `
      import { Readable } from "node:stream";
      import { localAdapter } from ${JSON.stringify(new URL("./local.ts", import.meta.url).href)};
      const logger = { debug() {}, info() {}, warn() {}, error() {}, child() { return logger; } };
      const local = localAdapter.create({ path: ${JSON.stringify(root)} }, { name: "x", logger, baseDir: "/" });
      const source = new Readable({ read() { this.push(Buffer.alloc(65536)); console.log("chunk"); } });
      await local.write("killed/file.gcode", source, { size: 1 << 30 });`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let chunks = 0;
    const exited = once(child, "exit");
    await Promise.race([
      exited,
      new Promise<void>((resolve) => {
        child.stdout.on("data", (data: Buffer) => {
          chunks += data.toString().split("chunk").length - 1;
          if (chunks >= 20) resolve();
        });
      }),
    ]);
    assert.ok(child.kill("SIGKILL"), "the writer was still running");
    await exited;
    const names = await onDisk("killed");
    assert.ok(
      names.some((name) => name.endsWith(".part")),
      "the killed write left its temp file",
    );
    assert.equal(await fs.readFile(join(root, "killed", "file.gcode"), "utf8"), "old");
    assert.deepEqual(
      (await collect(local.list("killed"))).map((e) => e.path),
      ["killed/file.gcode"],
    );
  });

  it("a listing sweeps the temp files of writes an earlier run left, never one being written", async () => {
    await fs.mkdir(join(root, "leftover"), { recursive: true });
    const beforeThisRun = new Date(performance.timeOrigin - 60_000);
    await fs.writeFile(join(root, "leftover", TEMP), "a write killed in an earlier run");
    await fs.utimes(join(root, "leftover", TEMP), beforeThisRun, beforeThisRun);
    const another = ".ferry-fedcba9876543210.part";
    await fs.writeFile(join(root, "leftover", another), "another process, writing now");
    // A write of ours under way, whose temp file a lagging (network) clock dates before this run.
    const { source, consumed } = stallingSource(Buffer.from("0123456789"));
    const writing = local.write("leftover/ours.gcode", source, { size: 20 });
    await consumed;
    const ours = (await onDisk("leftover")).find((name) => name !== TEMP && name !== another);
    assert.ok(ours, "our write has its temp file");
    await fs.utimes(join(root, "leftover", ours), beforeThisRun, beforeThisRun);

    assert.deepEqual(await collect(local.list("leftover")), []);
    assert.deepEqual((await onDisk("leftover")).sort(), [another, ours].sort(), "only the leftover went");
    source.push(Buffer.from("abcdefghij"));
    source.push(null);
    await writing;
    assert.equal((await readAll(local, "leftover/ours.gcode")).toString(), "0123456789abcdefghij");
  });

  it("removes a folder kept alive only by stale temp files, not by a fresh one", async () => {
    await fs.mkdir(join(root, "stale"), { recursive: true });
    const temp = join(root, "stale", TEMP);
    await fs.writeFile(temp, "crashed write");
    await expectFerryError(local.remove("stale"), "NOT_EMPTY", "a write may be under way");
    const hourAgo = new Date(Date.now() - 3_600_000);
    await fs.utimes(temp, hourAgo, hourAgo);
    await local.remove("stale");
    await expectFerryError(local.stat("stale"), "NOT_FOUND", "removed");
  });

  it("refuses paths that escape its folder", async () => {
    await expectFerryError(put(local, "../escaped.gcode", Buffer.from("x")), "NAME_INVALID", "escape");
    await expectFerryError(local.stat("a/../../x"), "NAME_INVALID", "escape");
    await assert.rejects(fs.access(join(base, "escaped.gcode")));
  });

  it("keeps the modification time and the mode of a replaced file", async () => {
    const modTime = Date.UTC(2021, 4, 5, 6, 7, 8, 901);
    await put(local, "mode/tool.sh", Buffer.from("v1"));
    await fs.chmod(join(root, "mode", "tool.sh"), 0o750);
    await put(local, "mode/tool.sh", Buffer.from("v2"), { modTime });
    const stats = await fs.stat(join(root, "mode", "tool.sh"));
    assert.equal(stats.mode & 0o777, 0o750);
    assert.equal(Math.round(stats.mtimeMs), modTime);
  });

  it("hashes with sha256, moves with rename and reports usage", async () => {
    const data = Buffer.from("hash me");
    await put(local, "ops/a.gcode", data);
    assert.equal(
      await local.hash?.("ops/a.gcode", "sha256"),
      createHash("sha256").update(data).digest("hex"),
    );
    await expectFerryError(local.hash?.("ops/a.gcode", "md5") ?? Promise.resolve(), "UNSUPPORTED", "md5");
    await put(local, "ops/deep/b.gcode", Buffer.from("replaced by the move"));
    await local.move?.("ops/a.gcode", "ops/deep/b.gcode");
    assert.equal(await fs.readFile(join(root, "ops", "deep", "b.gcode"), "utf8"), "hash me");
    await local.move?.("ops/deep/b.gcode", "ops/new/parents/c.gcode");
    assert.equal((await local.stat("ops/new/parents/c.gcode")).size, data.length);
    const usage = await local.usage?.();
    assert.ok(usage?.totalBytes !== undefined && usage.totalBytes > 0 && (usage.freeBytes ?? -1) >= 0);
  });

  it("lists no symlinks by default; with follow_links, good ones and never dangling ones", async () => {
    await put(local, "links/target.gcode", Buffer.from("target"));
    await fs.symlink("target.gcode", join(root, "links", "good.gcode"));
    await fs.symlink("nowhere.gcode", join(root, "links", "dangling.gcode"));
    const listed = await collect(local.list("links"));
    assert.deepEqual(
      listed.map((e) => [e.path, e.size]),
      [["links/target.gcode", 6]],
    );
    const following = localAdapter.create(
      { path: "files", follow_links: true },
      { name: "quirks", logger: silentLogger, baseDir: base },
    );
    const followed = await collect(following.list("links"));
    assert.deepEqual(followed.map((e) => [e.path, e.size]).sort(), [
      ["links/good.gcode", 6],
      ["links/target.gcode", 6],
    ]);
  });

  it("reports a read-only folder as PERMISSION", async (t) => {
    const locked = join(root, "locked");
    await fs.mkdir(locked, { recursive: true });
    // Mode bits do not stop root; the immutable attribute does (where the filesystem has one).
    const asRoot = process.getuid?.() === 0;
    const lock = asRoot ? () => chattr("+i", locked) : () => fs.chmod(locked, 0o555).then(() => true);
    const unlock = asRoot ? () => chattr("-i", locked) : () => fs.chmod(locked, 0o755).then(() => true);
    if (!(await lock())) {
      t.skip("running as root on a filesystem without the immutable attribute");
      return;
    }
    try {
      await expectFerryError(put(local, "locked/f.gcode", Buffer.from("x")), "PERMISSION", "read-only");
      await assert.rejects(fs.stat(join(locked, "f.gcode")), { code: "ENOENT" }, "nothing written");
    } finally {
      await unlock();
    }
  });

  it("translates errno codes, naming the path and keeping the cause", () => {
    const cases: [string, string][] = [
      ["ENOENT", "NOT_FOUND"],
      ["EEXIST", "EXISTS"],
      ["ENOTEMPTY", "NOT_EMPTY"],
      ["EACCES", "PERMISSION"],
      ["EPERM", "PERMISSION"],
      ["ENOSPC", "NO_SPACE"],
      ["EDQUOT", "NO_SPACE"],
      ["ENAMETOOLONG", "NAME_INVALID"],
      ["EINVAL", "NAME_INVALID"],
      ["EBUSY", "BUSY"],
      ["EIO", "UNAVAILABLE"],
      ["ENODEV", "UNAVAILABLE"],
      ["ENXIO", "UNAVAILABLE"],
      ["EWHATEVER", "PROTOCOL"],
    ];
    for (const [errno, code] of cases) {
      const cause = Object.assign(new Error(`${errno}: boom`), { code: errno });
      const error = fsError(cause, "dev", "dir/file.gcode");
      assert.ok(isFerryError(error), errno);
      assert.equal(error.code, code, errno);
      assert.equal(error.cause, cause, errno);
      assert.equal(error.subject, "dir/file.gcode");
      assert.match(error.message, /dev: dir\/file\.gcode/);
    }
    assert.equal(fsError(Object.assign(new Error("x"), { code: "EBUSY" }), "d", "p").retryable, true);
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    assert.equal(fsError(abort, "d", "p").code, "ABORTED");
  });
});

/** Runs chattr; false when the tool or the filesystem does not support it. */
async function chattr(flag: string, path: string): Promise<boolean> {
  const child = spawn("chattr", [flag, path], { stdio: "ignore" });
  const [code] = (await Promise.race([once(child, "exit"), once(child, "error").then(() => [1])])) as [
    number | null,
  ];
  return code === 0;
}
