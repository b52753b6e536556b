/**
 * Benchmark (not a test): latency of `ferry serve` on a watched local→local sync, from a file's
 * close to its delivery under its final name, over N files written one every few milliseconds.
 *
 *   npm run bench:watch -- [--files 1000] [--interval 10]
 */
import { spawn } from "node:child_process";
import { watch } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { files: { type: "string", default: "1000" }, interval: { type: "string", default: "10" } },
});
const files = Number(values.files);
const interval = Number(values.interval);
const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
/** Node flags of bin/ferry.js's shebang, so the measured process is the one users run. */
const NODE_FLAGS = ["--max-semi-space-size=2"];

const work = await mkdtemp(join(tmpdir(), "ferry-watch-"));
await mkdir(join(work, "inbox"));
await mkdir(join(work, "outbox"));
await writeFile(
  join(work, "ferry.yaml"),
  "data_dir: ./data\nsyncs:\n  w: { source: ./inbox, targets: [./outbox], mode: mirror, watch: true }\n",
);
const serve = spawn(process.execPath, [...NODE_FLAGS, cli, "serve", "-c", join(work, "ferry.yaml")], {
  cwd: work,
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  await new Promise<void>((resolve) =>
    serve.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("serving") && resolve()),
  );
  await sleep(1000); // the watcher's first scan

  const closedAt = new Map<string, number>();
  const latencies: number[] = [];
  const arrived = new Promise<void>((resolve) => {
    const watcher = watch(join(work, "outbox"), (_event, name) => {
      if (name === null) return;
      const t0 = closedAt.get(name);
      if (t0 === undefined) return;
      closedAt.delete(name);
      latencies.push(performance.now() - t0);
      if (latencies.length === files) {
        watcher.close();
        resolve();
      }
    });
  });
  for (let i = 0; i < files; i++) {
    const name = `file-${i}.dat`;
    await writeFile(join(work, "inbox", name), `payload ${i}\n`.repeat(64));
    closedAt.set(name, performance.now());
    await sleep(interval);
  }
  const timeout = sleep(60_000).then(() => "timeout" as const);
  const result = await Promise.race([arrived.then(() => "ok" as const), timeout]);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  console.log(
    `files ${files} written every ${interval} ms; delivered ${latencies.length}${result === "timeout" ? " (timed out)" : ""}`,
  );
  console.log(
    `close → delivery: p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms, max ${pct(100).toFixed(0)} ms (target p99 <= 500 ms)`,
  );
  if (result === "timeout") process.exitCode = 1;
} finally {
  serve.kill("SIGTERM");
  await new Promise((resolve) => serve.once("exit", resolve));
  await rm(work, { recursive: true, force: true });
}
