/**
 * `ferry sync` end to end over local folders that hold symbolic links: the real CLI in its own
 * process. Nothing outside a source or a target folder is ever written or deleted through a link,
 * and links that lead back up the tree do not hang the scan (docs/adr/0015-links.md).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

const bin = new URL("../bin/ferry.js", import.meta.url).pathname;

interface Summary {
  ok: boolean;
  targets: {
    target: string;
    outcome: string;
    planned: number;
    done: number;
    failed: number;
    errors: { path: string; code: string; message: string }[];
    notes: string[];
  }[];
}

function syncJson(cwd: string): Promise<{ code: number; summary: Summary; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [bin, "sync", "--json"],
      { cwd, env: { ...process.env, FERRY_LOG_LEVEL: "error" }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        try {
          resolve({ code, summary: JSON.parse(stdout) as Summary, stderr });
        } catch {
          reject(new Error(`ferry sync exited ${code} without a summary: ${stdout}${stderr}`));
        }
      },
    );
  });
}

/** Writes files (path → content) under `dir`, creating folders. */
async function files(dir: string, contents: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(contents)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

describe("ferry sync with symbolic links in local folders", () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "ferry-links-"));
  });
  after(() => rm(base, { recursive: true, force: true }));

  test("a mirror neither writes nor deletes outside its target through a link in it", async () => {
    const dir = join(base, "mirror");
    await files(dir, {
      "master/sub/a.txt": "new",
      "master/f.txt": "source f",
      "master/plain.txt": "plain",
      "victim/keep.txt": "keep me",
      "victim/f.txt": "victim's f",
    });
    await mkdir(join(dir, "t"));
    await symlink("../victim", join(dir, "t", "sub"));
    await symlink("../victim/f.txt", join(dir, "t", "f.txt"));
    await writeFile(
      join(dir, "ferry.yaml"),
      ["syncs:", "  m:", "    source: ./master", "    targets: [./t]", "    mode: mirror", ""].join("\n"),
    );

    const { code, summary } = await syncJson(dir);

    assert.deepEqual((await readdir(join(dir, "victim"))).sort(), ["f.txt", "keep.txt"]);
    assert.equal(await readFile(join(dir, "victim", "keep.txt"), "utf8"), "keep me");
    assert.equal(await readFile(join(dir, "victim", "f.txt"), "utf8"), "victim's f");
    assert.ok((await lstat(join(dir, "t", "sub"))).isSymbolicLink(), "the link is left as it was");
    assert.ok((await lstat(join(dir, "t", "f.txt"))).isSymbolicLink(), "the link is left as it was");
    assert.equal(await readFile(join(dir, "t", "plain.txt"), "utf8"), "plain", "the rest is synced");
    assert.equal(code, 1, "what could not be written is a failure");
    const errors = summary.targets.flatMap((t) => t.errors);
    for (const link of ["sub", "f.txt"]) {
      const error = errors.find((e) => e.path.startsWith(link));
      assert.ok(error, `an error about ${link}: ${JSON.stringify(errors)}`);
      assert.equal(error.code, "PERMISSION");
      assert.match(error.message, /symbolic link/);
    }
  });

  test("a move does not follow a linked folder in its source, and never deletes through one", async () => {
    const dir = join(base, "move");
    await files(dir, { "src/normal.txt": "normal", "outside/precious.txt": "precious" });
    // Written long ago: a move leaves alone files that may still be growing.
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const path of ["src/normal.txt", "outside/precious.txt"])
      await utimes(join(dir, path), hourAgo, hourAgo);
    await symlink("../outside", join(dir, "src", "linkdir"));
    await writeFile(
      join(dir, "ferry.yaml"),
      ["syncs:", "  plain:", "    source: ./src", "    targets: [./dest]", "    mode: move", ""].join("\n"),
    );

    const plain = await syncJson(dir);
    assert.equal(plain.code, 0, JSON.stringify(plain.summary));
    assert.deepEqual(await readdir(join(dir, "dest")), ["normal.txt"], "the link is not followed");
    assert.equal(await readFile(join(dir, "outside", "precious.txt"), "utf8"), "precious");
    assert.deepEqual(await readdir(join(dir, "src")), ["linkdir"], "the moved file is gone, the link stays");

    // Followed on request: delivered, but the original behind the link stays where it is.
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "devices:",
        "  followed: { type: local, path: ./src, follow_links: true }",
        "syncs:",
        "  followed:",
        "    source: followed",
        "    targets: [./dest-followed]",
        "    mode: move",
        "",
      ].join("\n"),
    );
    const followed = await syncJson(dir);
    assert.equal(
      await readFile(join(dir, "dest-followed", "linkdir", "precious.txt"), "utf8"),
      "precious",
      "read through the link",
    );
    assert.equal(await readFile(join(dir, "outside", "precious.txt"), "utf8"), "precious", "not deleted");
    assert.equal(followed.code, 1);
    const error = followed.summary.targets.flatMap((t) => t.errors).find((e) => e.path.includes("precious"));
    assert.ok(error, JSON.stringify(followed.summary));
    assert.match(error.message, /symbolic link/);
  });

  test("links that lead back up the tree neither hang the scan nor multiply files", async () => {
    const dir = join(base, "loops");
    await files(dir, { "src/one.txt": "1", "src/d/two.txt": "2" });
    await symlink(".", join(dir, "src", "loop"));
    await symlink("..", join(dir, "src", "d", "up"));
    const configs = {
      plain: ["syncs:", "  plain:", "    source: ./src", "    targets: [./plain]", "    mode: mirror"],
      followed: [
        "devices:",
        "  followed: { type: local, path: ./src, follow_links: true }",
        "syncs:",
        "  followed:",
        "    source: followed",
        "    targets: [./followed]",
        "    mode: mirror",
      ],
    };
    for (const [target, config] of Object.entries(configs)) {
      await writeFile(join(dir, "ferry.yaml"), [...config, ""].join("\n"));
      const { code, summary } = await syncJson(dir);
      assert.equal(code, 0, JSON.stringify(summary));
      assert.deepEqual((await readdir(join(dir, target), { recursive: true })).sort(), [
        "d",
        "d/two.txt",
        "one.txt",
      ]);
    }
  });
});
