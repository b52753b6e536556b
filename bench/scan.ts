/**
 * Benchmark (not a test): plan a tree against an up-to-date target — the work of every rescan.
 * Builds a source of N files in nested folders, mirrors it once, then times `ferry sync --dry-run`
 * (scan both sides + plan) in its own process and reports its peak RSS.
 *
 *   npm run bench:scan -- [--files 100000]
 */
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatBytes } from "../src/core/units.ts";

const { values } = parseArgs({ options: { files: { type: "string", default: "100000" } } });
const files = Number(values.files);
const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
/** Node flags of bin/ferry.js's shebang, so the measured process is the one users run. */
const NODE_FLAGS = ["--max-semi-space-size=2"];

const work = await mkdtemp(join(tmpdir(), "ferry-scan-"));
try {
  const perDir = 100;
  for (let d = 0; d < Math.ceil(files / perDir); d++) {
    const dir = join(work, "src", `group-${d % 10}`, `batch-${d}`);
    await mkdir(dir, { recursive: true });
    const n = Math.min(perDir, files - d * perDir);
    await Promise.all(
      Array.from({ length: n }, (_, i) => writeFile(join(dir, `part ${i}.gcode`), `; ${d}/${i}\n`)),
    );
  }
  // An up-to-date target: the same tree with the same times.
  await cp(join(work, "src"), join(work, "dst"), { recursive: true, preserveTimestamps: true });
  await writeFile(
    join(work, "ferry.yaml"),
    "syncs:\n  scan: { source: ./src, targets: [./dst], mode: mirror }\n",
  );

  const started = performance.now();
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, cli, "sync", "-c", join(work, "ferry.yaml"), "--dry-run", "--json"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  let rss = 0;
  const poll = setInterval(() => {
    void readFile(`/proc/${child.pid ?? 0}/status`, "utf8")
      .then((s) => (rss = Math.max(rss, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) * 1024)))
      .catch(() => undefined);
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearInterval(poll);
  const seconds = (performance.now() - started) / 1000;
  const summary = JSON.parse(output) as { targets: { planned: number }[] };
  const planned = summary.targets.reduce((n, t) => n + t.planned, 0);
  console.log(`files ${files}, planned ${planned} (expected 0), exit ${code}`);
  console.log(
    `scan + plan ${seconds.toFixed(2)} s (target <= 5 s), peak RSS ${formatBytes(rss)} (target <= 300 MB)`,
  );
  if (code !== 0 || planned !== 0) process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
