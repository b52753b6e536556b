/**
 * `ferry sync --dry-run | head -3`: the reader closes the pipe after three lines, and Ferry stops
 * quietly (exit 0, no stack trace) instead of crashing on EPIPE.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";

const cli = new URL("../../bin/ferry.js", import.meta.url).pathname;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-epipe-"));
  await mkdir(join(dir, "master"));
  await mkdir(join(dir, "copy"));
  // 4,000 lines of plan, far more than a pipe holds (64 KiB), so Ferry is still writing when
  // `head` has gone.
  const name = (i: number) => `a-print-file-with-a-name-long-enough-to-fill-the-pipe-quickly-${i}.gcode`;
  for (let i = 0; i < 4000; i += 500)
    await Promise.all(
      Array.from({ length: 500 }, (_, j) => writeFile(join(dir, "master", name(i + j)), "G28\n")),
    );
  await writeFile(
    join(dir, "ferry.yaml"),
    "syncs:\n  prints: { source: ./master, targets: [./copy], mode: mirror }\n",
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("ferry sync --dry-run | head -3 exits quietly when head closes the pipe", async () => {
  const shell = spawn(
    "bash",
    [
      "-c",
      '"$0" "$1" sync --dry-run -c "$2" | head -3; exit "${PIPESTATUS[0]}"',
      process.execPath,
      cli,
      join(dir, "ferry.yaml"),
    ],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  shell.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  shell.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => shell.once("close", resolve));
  assert.equal(stdout.split("\n").length, 4, `three lines through head: ${stdout}`);
  assert.match(stdout, /4000 to do/);
  assert.equal(stderr, "", "nothing on stderr: no EPIPE, no stack trace");
  assert.equal(code, 0, "ferry's own exit code");
});
