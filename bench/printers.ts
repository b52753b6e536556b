/**
 * Benchmark (not a test): a full mirror onto N simulated PrusaLink printers, each ingesting at a
 * fixed rate. Prints wall time, the ideal bound (the largest per-printer byte count over the rate),
 * their ratio, and the sync process's peak RSS.
 *
 *   npm run bench:printers -- [--printers 20] [--files 10] [--size 2MB] [--rate 1MB]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatBytes } from "../src/core/units.ts";
import { parseSize } from "../src/core/units.ts";

const { values } = parseArgs({
  options: {
    printers: { type: "string", default: "20" },
    files: { type: "string", default: "10" },
    size: { type: "string", default: "2MB" },
    rate: { type: "string", default: "1MB" },
    port: { type: "string" },
  },
});
const printers = Number(values.printers);
const files = Number(values.files);
const size = parseSize(values.size, "--size");
const rate = parseSize(values.rate, "--rate");
// Below Linux's ephemeral range (32768+), so no outgoing connection holds one of the ports.
const port = Number(values.port ?? 20000 + Math.floor(Math.random() * (12000 - printers)));
const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
/** Node flags of bin/ferry.js's shebang, so the measured process is the one users run. */
const NODE_FLAGS = ["--max-semi-space-size=2"];

async function startSims(): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      cli,
      "sim",
      "prusalink",
      "--count",
      String(printers),
      "--port",
      String(port),
      "--rate",
      String(rate),
      "--password",
      "bench",
      // The simulators count and check every byte but keep none: holding 2 GB of uploads in one
      // process would make the fixture, not Ferry, the bottleneck on a small machine.
      "--no-content",
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`simulators exited with ${code}`)));
    child.stdout.on("data", (chunk: Buffer) => {
      seen += chunk.toString().split("simulator on").length - 1;
      if (seen >= printers) resolve();
    });
  });
  return child;
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function peakRss(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

const work = await mkdtemp(join(tmpdir(), "ferry-bench-"));
const sims = await startSims();
try {
  for (let i = 0; i < files; i++) {
    const dir = join(work, "master", `set-${i % 3}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `part-${i}.gcode`), randomBytes(size));
  }
  const names = Array.from({ length: printers }, (_, i) => `p${String(i).padStart(3, "0")}`);
  await writeFile(
    join(work, "ferry.yaml"),
    [
      "devices:",
      ...names.map(
        (n, i) =>
          `  ${n}: { type: prusalink, url: "http://127.0.0.1:${port + i}", username: maker, password: bench }`,
      ),
      "syncs:",
      "  bench:",
      "    source: ./master",
      `    targets: [${names.join(", ")}]`,
      "    mode: mirror",
      "",
    ].join("\n"),
  );

  const started = performance.now();
  const sync = spawn(
    process.execPath,
    [...NODE_FLAGS, cli, "sync", "-c", join(work, "ferry.yaml"), "--json"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  sync.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  let rss = 0;
  let syncCpu = 0;
  const simCpuBefore = await cpuSeconds(sims.pid ?? 0);
  const poll = setInterval(() => {
    if (sync.pid === undefined) return;
    void peakRss(sync.pid).then((v) => (rss = Math.max(rss, v)));
    void cpuSeconds(sync.pid).then((v) => (syncCpu = Math.max(syncCpu, v)));
  }, 50);
  const code = await new Promise<number | null>((resolve) => sync.once("exit", resolve));
  clearInterval(poll);
  const wall = (performance.now() - started) / 1000;
  const summary = JSON.parse(output) as { targets: { done: number; planned: number; bytes: number }[] };
  const done = summary.targets.reduce((n, t) => n + t.done, 0);
  const bytes = summary.targets.reduce((n, t) => n + t.bytes, 0);
  const ideal = (files * size) / rate;
  console.log(
    `printers ${printers}, files ${files} x ${formatBytes(size)}, rate ${formatBytes(rate)}/s per printer`,
  );
  console.log(`transfers done ${done}/${printers * files}, ${formatBytes(bytes)} sent, exit code ${code}`);
  console.log(
    `wall ${wall.toFixed(2)} s, ideal ${ideal.toFixed(2)} s, ratio ${(wall / ideal).toFixed(3)} (target <= 1.15)`,
  );
  console.log(`sync peak RSS ${formatBytes(rss)} (target <= 200 MB)`);
  const simCpu = (await cpuSeconds(sims.pid ?? 0)) - simCpuBefore;
  console.log(
    `CPU: sync ${syncCpu.toFixed(1)} s, simulators ${simCpu.toFixed(1)} s (of ${wall.toFixed(1)} s wall)`,
  );
  if (code !== 0 || done !== printers * files) process.exitCode = 1;
} finally {
  sims.kill("SIGINT");
  await rm(work, { recursive: true, force: true });
}
