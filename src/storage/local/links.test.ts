/**
 * Symbolic links in a local folder (docs/adr/0015-links.md): changes never go through a link,
 * links are read only with `follow_links: true`, and links that lead back up the tree are not
 * walked forever.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger, type Logger } from "../../core/logger.ts";
import type { StorageAdapter } from "../adapter.ts";
import { walk } from "../walk.ts";
import { collect, put, readAll } from "../../../test/conformance/storage-helpers.ts";
import { localAdapter } from "./local.ts";

let base: string;
let root: string;
let outside: string;

before(async () => {
  base = await fs.mkdtemp(join(tmpdir(), "ferry-links-"));
});
after(() => fs.rm(base, { recursive: true, force: true }));

/** A fresh root with `sub -> ../outside` (a folder) and `f.txt -> ../outside/f.txt` (a file). */
beforeEach(async () => {
  await fs.rm(join(base, "root"), { recursive: true, force: true });
  await fs.rm(join(base, "outside"), { recursive: true, force: true });
  root = join(base, "root");
  outside = join(base, "outside");
  await fs.mkdir(join(root, "real"), { recursive: true });
  await fs.mkdir(outside);
  await fs.writeFile(join(root, "real", "r.txt"), "real");
  await fs.writeFile(join(outside, "keep.txt"), "keep me");
  await fs.writeFile(join(outside, "f.txt"), "outside f");
  await fs.symlink("../outside", join(root, "sub"));
  await fs.symlink("../outside/f.txt", join(root, "f.txt"));
});

function open(followLinks?: boolean, logger: Logger = silentLogger): StorageAdapter {
  const options = followLinks === undefined ? { path: "root" } : { path: "root", follow_links: followLinks };
  return localAdapter.create(options, { name: "links", logger, baseDir: base });
}

/** Rejects with `code`, the message naming `link` as a symbolic link. */
async function refused(action: Promise<unknown>, code: string, link: string, what: string): Promise<void> {
  await assert.rejects(action, (error: unknown) => {
    assert.ok(isFerryError(error), `${what}: ${String(error)}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    assert.ok(error.message.includes(`${link}: `), `${what}: "${error.message}" names ${link}`);
    assert.match(error.message, /symbolic link/, what);
    return true;
  });
}

async function outsideUntouched(): Promise<void> {
  assert.deepEqual((await fs.readdir(outside)).sort(), ["f.txt", "keep.txt"]);
  assert.equal(await fs.readFile(join(outside, "keep.txt"), "utf8"), "keep me");
  assert.equal(await fs.readFile(join(outside, "f.txt"), "utf8"), "outside f");
}

const isLink = async (path: string) => (await fs.lstat(join(root, path))).isSymbolicLink();

for (const followLinks of [false, true]) {
  describe(`changes never go through a link (follow_links: ${followLinks})`, () => {
    it("refuses to write below a linked folder, or over a linked file", async () => {
      const local = open(followLinks);
      await refused(put(local, "sub/new.txt", Buffer.from("x")), "PERMISSION", "sub", "below a link");
      await refused(put(local, "sub/keep.txt", Buffer.from("x")), "PERMISSION", "sub", "over through a link");
      await refused(put(local, "sub/deep/new.txt", Buffer.from("x")), "PERMISSION", "sub", "deeper");
      await refused(put(local, "f.txt", Buffer.from("x")), "PERMISSION", "f.txt", "over a linked file");
      await outsideUntouched();
      assert.ok((await isLink("sub")) && (await isLink("f.txt")), "the links stay");
    });

    it("refuses to remove below a linked folder; removing a link takes the link, not its target", async () => {
      const local = open(followLinks);
      await refused(local.remove("sub/keep.txt"), "PERMISSION", "sub", "remove below a link");
      await refused(local.remove("sub/gone.txt"), "PERMISSION", "sub", "remove a missing file below a link");
      await outsideUntouched();
      await local.remove("f.txt");
      await local.remove("sub");
      await outsideUntouched();
      await assert.rejects(fs.lstat(join(root, "f.txt")), { code: "ENOENT" });
      await assert.rejects(fs.lstat(join(root, "sub")), { code: "ENOENT" });
    });

    it("refuses mkdir, move and setModTime through a link", async () => {
      const local = open(followLinks);
      await refused(local.mkdir("sub/made"), "PERMISSION", "sub", "mkdir below a link");
      await refused(local.mkdir("sub"), "PERMISSION", "sub", "mkdir of a link");
      await refused(
        local.move?.("real/r.txt", "sub/r.txt") ?? Promise.resolve(),
        "PERMISSION",
        "sub",
        "into",
      );
      await refused(
        local.move?.("sub/keep.txt", "real/k.txt") ?? Promise.resolve(),
        "PERMISSION",
        "sub",
        "out",
      );
      await refused(local.move?.("real/r.txt", "f.txt") ?? Promise.resolve(), "PERMISSION", "f.txt", "over");
      const before = (await fs.stat(join(outside, "keep.txt"))).mtimeMs;
      await refused(local.setModTime?.("sub/keep.txt", 0) ?? Promise.resolve(), "PERMISSION", "sub", "time");
      await refused(local.setModTime?.("f.txt", 0) ?? Promise.resolve(), "PERMISSION", "f.txt", "time");
      assert.equal((await fs.stat(join(outside, "keep.txt"))).mtimeMs, before);
      await outsideUntouched();
      assert.equal(await fs.readFile(join(root, "real", "r.txt"), "utf8"), "real");
    });

    it("still writes, moves and removes where no link is on the way", async () => {
      const local = open(followLinks);
      await put(local, "real/deeper/n.txt", Buffer.from("n"));
      await local.move?.("real/deeper/n.txt", "fresh/n.txt");
      await local.setModTime?.("fresh/n.txt", Date.UTC(2020, 0, 1));
      assert.equal((await local.stat("fresh/n.txt")).modTime, Date.UTC(2020, 0, 1));
      await local.remove("fresh/n.txt");
      await local.remove("fresh");
      await local.mkdir("real/made");
      assert.ok((await fs.stat(join(root, "real", "made"))).isDirectory());
    });
  });
}

describe("links are not followed by default", () => {
  it("leaves linked files and folders out of listings and walks", async () => {
    const local = open();
    assert.deepEqual((await collect(local.list(""))).map((e) => e.path).sort(), ["real"]);
    assert.deepEqual((await collect(walk(local, ""))).map((e) => e.path).sort(), ["real", "real/r.txt"]);
  });

  it("does not stat, read or list through a link", async () => {
    const local = open(false);
    // Each started only when awaited: a refusal that came before its turn would go unhandled.
    for (const [what, action] of [
      ["stat of a linked file", () => local.stat("f.txt")],
      ["stat through a linked folder", () => local.stat("sub/keep.txt")],
      // The file itself is not looked at before it is opened: the open refuses the link.
      ["read of a linked file", () => readAll(local, "f.txt")],
      ["read with entry of a linked file", () => readWithEntry(local, "f.txt")],
      ["read with entry through a linked folder", () => readWithEntry(local, "sub/keep.txt")],
      ["read through a linked folder", () => readAll(local, "sub/keep.txt")],
      ["list of a linked folder", () => collect(local.list("sub"))],
    ] as const) {
      await assert.rejects(action(), (error: unknown) => isFerryError(error, "NOT_FOUND"), what);
    }
  });

  it("finishes at once on links that lead back up the tree", async () => {
    await fs.symlink(".", join(root, "loop"));
    await fs.symlink("..", join(root, "real", "up"));
    const paths = (await collect(walk(open(), ""))).map((e) => e.path).sort();
    assert.deepEqual(paths, ["real", "real/r.txt"]);
  });
});

describe("follow_links: true", () => {
  it("reads through links to files and folders", async () => {
    const local = open(true);
    const paths = (await collect(walk(local, ""))).map((e) => [e.path, e.type]).sort();
    assert.deepEqual(paths, [
      ["f.txt", "file"],
      ["real", "dir"],
      ["real/r.txt", "file"],
      ["sub", "dir"],
      ["sub/f.txt", "file"],
      ["sub/keep.txt", "file"],
    ]);
    assert.equal((await readAll(local, "sub/keep.txt")).toString(), "keep me");
    assert.equal((await local.stat("f.txt")).size, "outside f".length);
  });

  it("skips links that lead back up the tree with a warning naming each, and finishes", async () => {
    await fs.symlink(".", join(root, "loop"));
    await fs.symlink("..", join(root, "real", "up"));
    await fs.symlink("../..", join(root, "real", "above"));
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (...args: unknown[]) => warnings.push(String(args.at(-1))),
      child: () => logger,
    };
    const entries = await collect(walk(open(true, logger), ""));
    const files = entries.filter((e) => e.type === "file").map((e) => e.path);
    // Each real file once; `real/above` leads to the folder that holds the root, whose other
    // entries are outside and followed as asked, but the root is not entered again.
    assert.equal(files.filter((p) => p.endsWith("r.txt")).length, 1, files.join(", "));
    assert.ok(!files.some((p) => p.includes("loop/") || p.includes("up/")), files.join(", "));
    for (const link of ["loop", "real/up", "real/above/root"]) {
      assert.ok(
        warnings.some((w) => w.includes(`${link} `)),
        `a warning names ${link}: ${warnings.join(" | ")}`,
      );
    }
  });
});

async function readWithEntry(adapter: StorageAdapter, path: string) {
  const opened = await adapter.readWithEntry?.(path);
  assert.ok(opened, `${adapter.name} opens a file with its entry`);
  return opened;
}
