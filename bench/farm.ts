/**
 * Benchmark (not a test): one farm node monitoring N simulated printers (half PrusaLink, half
 * OctoPrint, served by two `ferry sim` processes) at a 1 s interval, with a queue of J jobs that
 * wait for beds to be marked clear (so every scheduling pass weighs all of them against every
 * printer). This process is the node, built as `ferry serve` builds it (createApp, SQLite in a temp
 * data_dir). After every printer has been seen, for --seconds it measures:
 * - the node's CPU (cores) and RSS (peak),
 * - the scheduling pass (Farm.scheduleOnce, timed beside the node's own passes),
 * - the lag from a printer's state change, made through the simulator's /_sim/ control API, to
 *   its `printer.state` event on the bus (PrusaLink IDLE ⇄ BUSY, OctoPrint Operational ⇄ Connecting).
 *
 *   npm run bench:farm -- [--printers 1000] [--jobs 10000] [--seconds 30] [--changes 10]
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createApp } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import { percentile, startSimFleet } from "./support/sim-fleet.ts";

const { values } = parseArgs({
  options: {
    printers: { type: "string", default: "1000" },
    jobs: { type: "string", default: "10000" },
    seconds: { type: "string", default: "30" },
    /** State changes started per second during the measurement. */
    changes: { type: "string", default: "10" },
  },
});
const PRINTERS = Number(values.printers);
const JOBS = Number(values.jobs);
const SECONDS = Number(values.seconds);
const CHANGES = Number(values.changes);
const TARGET = { cores: 1, rssMb: 400, passMs: 50, lagP99Ms: 1500 };
/** PUT /_sim/state of one simulated printer. */
function setSimState(port: number, state: string): Promise<void> {
  const body = JSON.stringify({ state });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/_sim/state",
        method: "PUT",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.once("end", () =>
          res.statusCode === 204 ? resolve() : reject(new Error(`/_sim/state on ${port}: ${res.statusCode}`)),
        );
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid ?? 0}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function peakRss(): Promise<number> {
  const status = await readFile("/proc/self/status", "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const work = await mkdtemp(join(tmpdir(), "ferry-bench-farm-"));
const fleet = await startSimFleet(PRINTERS);
const { prusaCount, octoCount } = fleet;
const sims = fleet.children;
const printers = Array.from({ length: PRINTERS }, (_, i) => {
  const prusa = i < prusaCount;
  return {
    name: `${prusa ? "mk4" : "octo"}-${String(i).padStart(4, "0")}`,
    port: fleet.printer(i).port,
    busy: prusa ? "BUSY" : "Connecting",
    idle: prusa ? "IDLE" : "Operational",
  };
});
try {
  const yaml = [
    "data_dir: ./data",
    "devices:",
    ...printers.map(({ name, port }) =>
      name.startsWith("mk4")
        ? `  ${name}: { type: prusalink, url: "http://127.0.0.1:${port}", username: maker, password: bench, farm: true, model: MK4, tags: [PLA] }`
        : `  ${name}: { type: octoprint, url: "http://127.0.0.1:${port}", api_key: bench, farm: true, tags: [PLA] }`,
    ),
    "farm:",
    "  interval: 1s",
    "",
  ].join("\n");
  const configPath = join(work, "ferry.yaml");
  await writeFile(configPath, yaml);
  const config = parseConfig(yaml, configPath, { deviceKinds, env: {} });
  const app = await createApp(config, { logger: silentLogger });

  // The queue: J jobs, in orders of up to 1,000 copies, a third of them for MK4s.
  for (let made = 0, order = 0; made < JOBS; order++) {
    const quantity = Math.min(1000, JOBS - made);
    await app.farm.submit({
      file: { id: `f-${order}`, name: `part-${order}.gcode`, sha256: null },
      owner: "bench",
      role: "operator",
      quantity,
      priority: order % 3,
      ...(order % 3 === 0 ? { model: "MK4" } : {}),
    });
    made += quantity;
  }

  const seen = new Set<string>();
  const waiters = new Map<string, { activity: string; resolve: (at: number) => void }>();
  app.bus.on("printer.state", ({ payload }) => {
    seen.add(payload.printer);
    const waiter = waiters.get(payload.printer);
    if (waiter && payload.activity === waiter.activity) {
      waiters.delete(payload.printer);
      waiter.resolve(performance.now());
    }
  });
  const startedAt = performance.now();
  await app.start();
  while (seen.size < PRINTERS) await new Promise((r) => setTimeout(r, 100));
  const warmS = (performance.now() - startedAt) / 1000;

  // The measured window.
  const cpu = process.cpuUsage();
  const simsCpu = async () =>
    (await Promise.all(sims.map((sim) => cpuSeconds(sim.pid)))).reduce((a, b) => a + b, 0);
  const simsBefore = await simsCpu();
  const windowStart = performance.now();
  const lags: number[] = [];
  let timedOut = 0;
  /** One state change at a printer and back, each timed to its event. */
  async function flip(printer: (typeof printers)[number]): Promise<void> {
    for (const [state, activity] of [
      [printer.busy, "busy"],
      [printer.idle, "idle"],
    ] as const) {
      // At a random moment of the worker's interval: flipping back right after the event would
      // always land one whole interval after its last look.
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      const event = new Promise<number>((resolve) => waiters.set(printer.name, { activity, resolve }));
      const changed = performance.now();
      await setSimState(printer.port, state);
      const at = await Promise.race([
        event,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000)),
      ]);
      if (at === undefined) {
        timedOut++;
        waiters.delete(printer.name);
      } else lags.push(at - changed);
    }
  }
  const flips: Promise<void>[] = [];
  const busy = new Set<string>();
  const passes: number[] = [];
  const deadline = windowStart + SECONDS * 1000;
  let next = 0;
  while (performance.now() < deadline) {
    // CHANGES printers a second, each on a printer not being changed already.
    for (let i = 0; i < CHANGES / 10; i++) {
      const printer = printers[(next++ * 7919) % PRINTERS];
      if (!printer || busy.has(printer.name)) continue;
      busy.add(printer.name);
      flips.push(flip(printer).finally(() => busy.delete(printer.name)));
    }
    if (next % 10 === 0) {
      const t = performance.now();
      await app.farm.scheduleOnce();
      passes.push(performance.now() - t);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all(flips);
  const wallS = (performance.now() - windowStart) / 1000;
  const used = process.cpuUsage(cpu);
  const cores = (used.user + used.system) / 1e6 / wallS;
  const rss = await peakRss();
  const simCores = ((await simsCpu()) - simsBefore) / wallS;
  await app.stop();

  lags.sort((a, b) => a - b);
  passes.sort((a, b) => a - b);
  const rssMb = rss / 1024 / 1024;
  const row = (what: string, value: string, target: string, ok: boolean) =>
    console.log(`${what.padEnd(34)} ${value.padStart(22)}   ${target.padEnd(10)} ${ok ? "ok" : "MISSED"}`);
  console.log(
    `farm node: ${PRINTERS} printers (${prusaCount} PrusaLink, ${octoCount} OctoPrint) at 1 s, ` +
      `${JOBS} queued jobs; all seen after ${warmS.toFixed(1)} s; measured ${wallS.toFixed(1)} s`,
  );
  console.log(`${"".padEnd(34)} ${"measured".padStart(22)}   target`);
  row("CPU (cores, user + system)", cores.toFixed(2), `< ${TARGET.cores}`, cores < TARGET.cores);
  row("peak RSS (MB)", rssMb.toFixed(0), `< ${TARGET.rssMb}`, rssMb < TARGET.rssMb);
  const passP50 = percentile(passes, 50);
  const passMax = passes.at(-1) ?? NaN;
  row(
    `scheduling pass (ms, ${passes.length} passes)`,
    `p50 ${passP50.toFixed(1)}, max ${passMax.toFixed(1)}`,
    `< ${TARGET.passMs}`,
    passMax < TARGET.passMs,
  );
  const lagP99 = percentile(lags, 99);
  row(
    `change → event (ms, ${lags.length} changes)`,
    `p50 ${percentile(lags, 50).toFixed(0)}, p99 ${lagP99.toFixed(0)}`,
    `p99 < ${TARGET.lagP99Ms}`,
    lagP99 < TARGET.lagP99Ms && timedOut === 0,
  );
  console.log(
    `(the simulators used ${simCores.toFixed(2)} cores of this machine's ${availableParallelism()} meanwhile)`,
  );
  if (timedOut > 0) console.log(`${timedOut} changes never reached the bus within 10 s`);
} finally {
  for (const sim of sims) sim.kill("SIGINT");
  await rm(work, { recursive: true, force: true });
}
