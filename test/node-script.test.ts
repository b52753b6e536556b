/**
 * scripts/node.sh (behind `npm start`, `npm test`, `npm run ferry` and .ci/run) says when it
 * installs dependencies and lets npm show its progress, on stderr only: stdout stays the
 * command's own. Run on a copy of the script, with a stand-in `npm` that records how it was called.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";

const script = new URL("../scripts/node.sh", import.meta.url).pathname;

let root: string;
let fakeBin: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "ferry-node-sh-"));
  await mkdir(join(root, "scripts"));
  await copyFile(script, join(root, "scripts", "node.sh"));
  await writeFile(join(root, "package-lock.json"), "{}\n");
  fakeBin = join(root, "fake-bin");
  await mkdir(fakeBin);
  await writeFile(
    join(fakeBin, "npm"),
    [
      "#!/usr/bin/env bash",
      'echo "$*" >> "$FAKE_NPM_CALLS"',
      "mkdir -p node_modules && echo '{}' > node_modules/.package-lock.json",
      'echo "added 312 packages in 41s"',
      'echo "npm progress" >&2',
      "",
    ].join("\n"),
  );
  await chmod(join(fakeBin, "npm"), 0o755);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function nodeSh(): Promise<{ stdout: string; stderr: string; npmCalls: string[] }> {
  const calls = join(root, "npm-calls.txt");
  await writeFile(calls, "");
  const { stdout, stderr } = await promisify(execFile)(
    "bash",
    [join(root, "scripts", "node.sh"), "-p", '"the command\'s own output"'],
    {
      cwd: tmpdir(),
      env: {
        PATH: [fakeBin, dirname(process.execPath), "/usr/bin", "/bin"].join(":"),
        FAKE_NPM_CALLS: calls,
      },
    },
  );
  return { stdout, stderr, npmCalls: (await readFile(calls, "utf8")).split("\n").filter(Boolean) };
}

it("says it installs dependencies on the first run, shows npm's output on stderr, keeps stdout clean", async () => {
  const first = await nodeSh();
  assert.equal(first.stdout, "the command's own output\n");
  assert.match(first.stderr, /installing dependencies \(first run, about a minute\)/);
  assert.match(first.stderr, /added 312 packages/, "npm's own report, moved to stderr");
  assert.match(first.stderr, /npm progress/);
  assert.equal(first.npmCalls.length, 1);
  assert.match(first.npmCalls[0] ?? "", /^ci\b/);
  assert.doesNotMatch(first.npmCalls[0] ?? "", /--loglevel/, "npm is not silenced");

  const second = await nodeSh();
  assert.deepEqual(second, { stdout: "the command's own output\n", stderr: "", npmCalls: [] });

  // A checkout or merge changes the lockfile's date, not what it locks: no install.
  const later = new Date(Date.now() + 60_000);
  await utimes(join(root, "package-lock.json"), later, later);
  assert.deepEqual(await nodeSh(), { stdout: "the command's own output\n", stderr: "", npmCalls: [] });

  await writeFile(join(root, "package-lock.json"), '{"lockfileVersion": 3}\n');
  const changed = await nodeSh();
  assert.equal(changed.stdout, "the command's own output\n");
  assert.match(changed.stderr, /installing dependencies \(package-lock.json changed, about a minute\)/);
  assert.equal(changed.npmCalls.length, 1);
});

it("never installs through a linked node_modules (it belongs to another tree)", async () => {
  const other = join(root, "other-tree-modules");
  await mkdir(other, { recursive: true });
  await rm(join(root, "node_modules"), { recursive: true, force: true });
  await symlink(other, join(root, "node_modules"));
  await writeFile(join(other, ".ferry-lockfile-sha256"), "an older lockfile\n");
  await assert.rejects(nodeSh(), (error: { stderr: string; code: number }) => {
    assert.equal(error.code, 1);
    assert.match(
      error.stderr,
      /node_modules is a link to .*other-tree-modules installed from another package-lock.json/,
    );
    return true;
  });
  assert.equal(await readFile(join(root, "npm-calls.txt"), "utf8"), "", "npm was not called");
  await rm(join(root, "node_modules"));
});
