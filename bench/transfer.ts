/**
 * Benchmark (not a test): Ferry against rclone on the same local server, in the same run.
 *
 *   npm run bench:transfer -- --target ftp|sftp|webdav|s3 [--only big|small] [--big 1GiB] [--files 5000] [--file-size 4KiB]
 *     [--cpu-prof DIR]   (a CPU profile of each Ferry run, into DIR)
 *
 * Both send one big file, then a folder of many small ones, to a fresh folder of the server:
 * Ferry with `ferry sync` (copy mode, as a user runs it), rclone with `rclone copy` and its default
 * settings. Each is timed from process start to exit; what arrived is checked afterwards. The
 * targets: Ferry's throughput >= rclone's for the big file, and >= 3x its files per second.
 *
 * Client and server share this machine's cores, so each run also reports the CPU time the client
 * used and what the server's processes used meanwhile (less what they use idle, measured before):
 * when the two together fill the cores, the run is at the machine's bound.
 */
import { execFile, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { parseSize } from "../src/core/units.ts";
import { networkTargets, type NetworkTarget } from "../test/servers/targets.ts";
import { childrenCpuSeconds, watchTreeCpu } from "./support/cpu.ts";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "sftp" },
    big: { type: "string", default: "1GiB" },
    files: { type: "string", default: "5000" },
    "file-size": { type: "string", default: "4KiB" },
    only: { type: "string" },
    "cpu-prof": { type: "string" },
  },
});
const targetName = values.target;
const make = (networkTargets as Record<string, (() => Promise<NetworkTarget>) | undefined>)[targetName];
if (!make) {
  console.error(`--target must be one of ${Object.keys(networkTargets).join(", ")}`);
  process.exit(2);
}
if (values.only !== undefined && values.only !== "big" && values.only !== "small") {
  console.error("--only must be big or small");
  process.exit(2);
}
const cases = (["big", "small"] as const).filter((c) => values.only === undefined || values.only === c);
const bigSize = parseSize(values.big, "--big");
const fileCount = Number(values.files);
const fileSize = parseSize(values["file-size"], "--file-size");
const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const exec = promisify(execFile);
const maxRss = new URL("../test/support/max-rss.ts", import.meta.url).pathname;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
/** A finished client's sessions on the server end within this; server CPU is read after it. */
const SETTLE_MS = 1_000;
const IDLE_SAMPLE_MS = 3_000;

/** What one run of a client took: wall time, its own CPU, the server's CPU meanwhile (seconds). */
interface Timing {
  ms: number;
  cpu: number;
  serverCpu: number;
}

/** CPU seconds per ms the servers use while idle. */
let serverIdlePerMs = 0;

const work = await mkdtemp(join(tmpdir(), "ferry-bench-transfer-"));
let target: NetworkTarget | undefined;
try {
  await mkdir(join(work, "big"));
  if (cases.includes("big"))
    await pipeline(Readable.from(randomChunks(bigSize)), createWriteStream(join(work, "big", "big.bin")));
  for (let i = 0; cases.includes("small") && i < fileCount; i++) {
    const dir = join(work, "small", `d${i % 50}`);
    if (i < 50) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.dat`), randomBytes(fileSize));
  }
  target = await make();
  // The servers are our children: their idle CPU (Ceph's monitor ticks) is taken off each run.
  const idle = await watchTreeCpu(process.pid);
  await new Promise((resolve) => setTimeout(resolve, IDLE_SAMPLE_MS));
  serverIdlePerMs = (await idle.stop()) / IDLE_SAMPLE_MS;
  const rclone = await exec("rclone", ["version"]).then(
    (r) => r.stdout.split("\n")[0] ?? "rclone",
    () => undefined,
  );

  const results = new Map<string, { ferry: Timing; rss: number; rclone?: Timing }>();
  for (const folder of cases) {
    const expected = folder === "big" ? 1 : fileCount;
    const { timing: ferryTiming, rss } = await timeFerry(target, folder);
    await expectFiles(target, `ferry-${folder}`, expected);
    let rcloneTiming: Timing | undefined;
    if (rclone) {
      const { remote, password, path } = target.rclone;
      const pass = password === undefined ? "" : `,pass=${await obscure(password)}`;
      rcloneTiming = await timed(
        "rclone",
        ["copy", join(work, folder), `${remote}${pass}:${path(`rclone-${folder}`)}`],
        {
          RCLONE_CONFIG: "/dev/null",
          // With this machine's bundle path set, rclone's S3 client fails; it finds the CAs itself.
          AWS_CA_BUNDLE: undefined,
        },
      );
      await expectFiles(target, `rclone-${folder}`, expected);
    }
    results.set(folder, {
      ferry: ferryTiming,
      rss,
      ...(rcloneTiming === undefined ? {} : { rclone: rcloneTiming }),
    });
  }

  console.log(`bench:transfer --target ${targetName}: ${target.describe}`);
  if (!rclone) console.log("rclone is not installed (Debian package rclone): Ferry alone");
  else console.log(rclone);
  const big = results.get("big");
  const small = results.get("small");
  if (big) {
    const mbps = (t: Timing) => bigSize / 1e6 / (t.ms / 1000);
    console.log(
      `big file ${values.big}: ferry ${mbps(big.ferry).toFixed(1)} MB/s (${(big.ferry.ms / 1000).toFixed(1)} s, peak RSS ${mb(big.rss)})` +
        (big.rclone === undefined
          ? ""
          : `, rclone ${mbps(big.rclone).toFixed(1)} MB/s (${(big.rclone.ms / 1000).toFixed(1)} s), ratio ${(big.rclone.ms / big.ferry.ms).toFixed(2)} (target >= 1)`),
    );
    console.log(
      `  CPU: ${cpuLine("ferry", big.ferry, 1)}${big.rclone ? `; ${cpuLine("rclone", big.rclone, 1)}` : ""}`,
    );
  }
  if (small) {
    const fps = (t: Timing) => fileCount / (t.ms / 1000);
    console.log(
      `${fileCount} files of ${values["file-size"]}: ferry ${fps(small.ferry).toFixed(0)} files/s (${(small.ferry.ms / 1000).toFixed(1)} s, peak RSS ${mb(small.rss)})` +
        (small.rclone === undefined
          ? ""
          : `, rclone ${fps(small.rclone).toFixed(0)} files/s (${(small.rclone.ms / 1000).toFixed(1)} s), ratio ${(small.rclone.ms / small.ferry.ms).toFixed(2)} (target >= 3)`),
    );
    console.log(
      `  CPU per file: ${cpuLine("ferry", small.ferry, fileCount)}${small.rclone ? `; ${cpuLine("rclone", small.rclone, fileCount)}` : ""}`,
    );
  }
  console.log(
    `  server idle: ${(serverIdlePerMs * 1000).toFixed(3)} CPU s/s (taken off); load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await target?.close();
  await rm(work, { recursive: true, force: true });
}

async function expectFiles(t: NetworkTarget, folder: string, files: number): Promise<void> {
  const found = await t.files(folder);
  if (found !== files) throw new Error(`${folder}: ${found} files arrived, ${files} expected`);
}

/** rclone wants passwords in its own reversible "obscured" form. */
async function obscure(password: string): Promise<string> {
  return (await exec("rclone", ["obscure", password])).stdout.trim();
}

/**
 * A client's and the server's CPU per item (ms), and how many of this machine's cores the two kept
 * busy together over the run.
 */
function cpuLine(name: string, t: Timing, items: number): string {
  const per = (s: number) => ((s * 1000) / items).toFixed(items > 1 ? 3 : 0);
  const cores = (t.cpu + t.serverCpu) / (t.ms / 1000);
  return `${name} ${per(t.cpu)} ms + server ${per(t.serverCpu)} ms (${cores.toFixed(2)} of ${availableParallelism()} cores)`;
}

/** `ferry sync` of one folder onto the target, in copy mode, in a process of its own. */
async function timeFerry(t: NetworkTarget, folder: string): Promise<{ timing: Timing; rss: number }> {
  const dir = join(work, `ferry-${folder}-run`);
  await mkdir(dir, { recursive: true });
  const config = [
    "data_dir: ./data",
    "devices:",
    `  bench: ${JSON.stringify(t.device)}`,
    "syncs:",
    `  bench: { source: ${JSON.stringify(join(work, folder))}, targets: ["bench:ferry-${folder}"], mode: copy }`,
    "",
  ].join("\n");
  await writeFile(join(dir, "ferry.yaml"), config);
  const rssFile = join(dir, "max-rss");
  const timing = await timed(
    process.execPath,
    [
      "--max-semi-space-size=2",
      ...(values["cpu-prof"] === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`]),
      "--import",
      maxRss,
      cli,
      "sync",
      "-c",
      join(dir, "ferry.yaml"),
    ],
    {
      FERRY_LOG_LEVEL: "error",
      FERRY_MAX_RSS_FILE: rssFile,
    },
  );
  const rss = Number(await readFile(rssFile, "utf8"));
  await rm(dir, { recursive: true, force: true });
  return { timing, rss };
}

/** Runs a command to its end, timed, with its CPU and the server's; `env` adds to ours (undefined: removes). */
async function timed(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<Timing> {
  const environment = Object.fromEntries(
    Object.entries({ ...process.env, ...env }).filter(([name]) => !(name in env) || env[name] !== undefined),
  );
  const server = await watchTreeCpu(process.pid);
  const cpuBefore = await childrenCpuSeconds();
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: environment,
    });
    if (child.pid !== undefined) server.except(child.pid);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${stderr.trim()}`)),
    );
  });
  const ms = performance.now() - started;
  const cpu = (await childrenCpuSeconds()) - cpuBefore;
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const serverCpu = (await server.stop()) - serverIdlePerMs * (performance.now() - started);
  return { ms, cpu, serverCpu: Math.max(0, serverCpu) };
}

function* randomChunks(total: number): Generator<Buffer> {
  const chunk = 4 * 1024 * 1024;
  for (let left = total; left > 0; left -= chunk) yield randomBytes(Math.min(chunk, left));
}
