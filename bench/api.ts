/**
 * Benchmark (not a test): Ferry's HTTP server under a fleet's load. First this process writes the
 * fixture through Ferry's own repositories: a config of N devices (PrusaLink printers and SFTP
 * servers that no sync or farm uses, so nothing probes them) and a SQLite store in a temp folder
 * with their recorded states, a busy queue (queued tasks of two syncs, plus some done, dead and
 * running) and an admin API token. Then the server starts on it in a child process (`--role
 * server`, with the Node flags of bin/ferry.js), as `ferry serve` restarting would: an App whose
 * runner has no workers, so the queue holds still while it is measured.
 *
 * This process is the load: (1) open loop, `--rate` requests/s alternating GET /api/v1/tasks and
 * GET /api/v1/devices over keep-alive connections, each timed from when it was due to be sent (a
 * slow server cannot hide by slowing the sender); (2) `--clients` SSE clients on /api/v1/events
 * while the server publishes `--events` task.done events/s on its bus, each timed from the
 * envelope's `at` to its arrival here (one machine, one clock). The server samples its own CPU,
 * RSS and event-loop delay during each phase. Prints a table against the targets, with how late
 * each process's event loop ran and the machine's load (two shared cores wait for CPU); exits 0
 * either way.
 *
 *   npm run bench:api -- [--devices 200] [--tasks 20000] [--rate 200] [--seconds 15]
 *                        [--clients 100] [--events 1000] [--event-seconds 10] [--profile DIR]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { get, type ClientRequest, type IncomingMessage } from "node:http";
import { Session } from "node:inspector/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { createApp, openConfiguredStore } from "../src/app.ts";
import { createLogger } from "../src/cli/log.ts";
import { parseConfig, type FerryConfig } from "../src/config/index.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import { targetQueue } from "../src/devices/queues.ts";
import { FerryServer } from "../src/server/server.ts";
import { fileKey, FILE_TASK, syncScope, type FilePayload } from "../src/sync/engine/payloads.ts";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "load" },
    /** The server's: the folder of the fixture's config and data. */
    dir: { type: "string" },
    devices: { type: "string", default: "200" },
    tasks: { type: "string", default: "20000" },
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "15" },
    clients: { type: "string", default: "100" },
    events: { type: "string", default: "1000" },
    "event-seconds": { type: "string", default: "10" },
    profile: { type: "string" },
  },
});
const DEVICES = Number(values.devices);
const TASKS = Number(values.tasks);
const TARGET = { p99Ms: 50, sseP99Ms: 200, rssMb: 300 };
/** Node flags of bin/ferry.js's shebang, so the measured process is the one users run. */
const NODE_FLAGS = ["--max-semi-space-size=2"];
const MB = 1024 * 1024;

/** Messages from the load to the server... */
type Command =
  | { type: "measure"; phase: string }
  | { type: "measured" }
  | { type: "publish"; rate: number; seconds: number }
  | { type: "stop" };
/** ...and back. */
type Report =
  | { type: "ready"; url: string; rssMb: number }
  | { type: "measured"; cpuPercent: number; peakRssMb: number; heapMb: number; loop: LoopDelay }
  | { type: "published"; count: number };

/** How late the process's event loop ran, in ms: a process starved of CPU or blocked shows here. */
interface LoopDelay {
  p99: number;
  max: number;
}

function watchLoop(): () => LoopDelay {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return () => {
    histogram.disable();
    // Less the sampling interval it waits on purpose.
    return { p99: histogram.percentile(99) / 1e6 - 10, max: histogram.max / 1e6 - 10 };
  };
}

const loopText = (loop: LoopDelay) =>
  `event loop late p99 ${loop.p99.toFixed(0)} / max ${loop.max.toFixed(0)} ms`;

// ---------------------------------------------------------------------------------------------
// The fixture: a config and a data folder, made before the server starts, as a restart finds them

/** Printers first (three in four), then file servers; each a device no sync or farm uses. */
function deviceNames(): string[] {
  const printers = Math.round(DEVICES * 0.75);
  const pad = (i: number) => String(i).padStart(3, "0");
  return [
    ...Array.from({ length: printers }, (_, i) => `mk4-${pad(i)}`),
    ...Array.from({ length: DEVICES - printers }, (_, i) => `nas-${pad(i)}`),
  ];
}

const isPrinter = (device: string) => device.startsWith("mk4-");

function fixtureConfig(dir: string): FerryConfig {
  // Port 9 (discard): nobody listens there, and nothing here connects to it.
  const yaml = [
    "data_dir: ./data",
    "server:",
    "  listen: 127.0.0.1:0",
    "devices:",
    ...deviceNames().map((name) =>
      isPrinter(name)
        ? `  ${name}: { type: prusalink, url: "http://127.0.0.1:9", username: maker, password: bench }`
        : `  ${name}: { type: sftp, host: 127.0.0.1, port: 9, username: sync, password: bench, root: /upload }`,
    ),
    "",
  ].join("\n");
  return parseConfig(yaml, join(dir, "ferry.yaml"), { deviceKinds, env: {} });
}

/**
 * The store of a fleet at work, written through Ferry's own repositories: device states, TASKS
 * queued and beyond them some done, dead and running (another node's), an admin with a token.
 * Made in this process, so that the server's memory holds none of the making.
 */
async function buildFixture(config: FerryConfig): Promise<{ token: string; counts: Record<string, number> }> {
  const stored = await openConfiguredStore(config);
  try {
    const devices = deviceNames();
    const states = ["online", "online", "online", "busy", "offline", "attention"] as const;
    for (const [i, name] of devices.entries()) {
      const state = states[i % states.length] ?? "online";
      const detail =
        state === "offline" ? "connect ECONNREFUSED 127.0.0.1:9" : state === "busy" ? "PRINTING" : undefined;
      await stored.deviceStates.set(name, state, detail);
    }

    const queue = stored.queue;
    const DONE = Math.round(TASKS / 10);
    const DEAD = Math.round(TASKS / 50);
    const RUNNING = Math.min(100, DEVICES);
    for (let i = 0; i < TASKS + DONE + DEAD + RUNNING; i++) {
      const target = devices[i % devices.length] ?? "";
      const printer = isPrinter(target);
      const sync = printer ? "farm" : "backup";
      const path = printer ? `models/set-${i % 40}/part-${i}.gcode` : `logs/2025/day-${i % 365}/run-${i}.tar`;
      const payload: FilePayload = {
        op: "upload",
        sync,
        target,
        path,
        targetPath: path,
        size: 1_000_000 + ((i * 7919) % 50_000_000),
        modTime: 1_760_000_000_000 + i,
      };
      await queue.enqueue({
        kind: FILE_TASK,
        key: fileKey(sync, target, path),
        queue: targetQueue(target, printer ? 1 : 4, path),
        payload,
        scope: syncScope(sync),
        priority: i % 10 === 0 ? 1 : 0,
      });
    }
    const peer = "other-node:/srv/ferry/0";
    const claimed = async () => {
      const task = await queue.claim(peer, { leaseMs: 3_600_000 });
      if (!task) throw new Error("the bench's queue ran out of tasks to claim");
      return task;
    };
    for (let i = 0; i < DONE; i++) await queue.complete((await claimed()).id, peer);
    for (let i = 0; i < DEAD; i++)
      await queue.fail((await claimed()).id, peer, {
        message: "the printer refused the file: 409 Conflict",
        retryable: false,
      });
    for (let i = 0; i < RUNNING; i++) await claimed();

    await stored.accounts.addUser({ name: "admin", role: "admin", password: "a long enough password" });
    const { secret } = await stored.accounts.createToken({
      user: "admin",
      name: "bench",
      role: "admin",
      expiresAt: null,
    });
    return { token: secret, counts: { ...(await queue.counts()) } };
  } finally {
    await stored.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The server process

async function runServer(dir: string): Promise<void> {
  const send = (report: Report) => process.send?.(report);
  const config = fixtureConfig(dir);
  const devices = deviceNames();
  const app = await createApp(config, { logger: createLogger("json"), workers: 0 });
  await app.start();
  if (!config.server) throw new Error("the bench's config has no server section");
  const server = await FerryServer.create(app, config.server, { env: {}, announce: () => undefined });
  await server.start();
  const address = server.fastify.server.address();
  if (typeof address !== "object" || address === null) throw new Error("the server has no address");

  // --profile <dir>: a CPU profile of the server for each phase, to open in Chrome's DevTools.
  const profiler = values.profile === undefined ? undefined : new Session();
  profiler?.connect();
  await profiler?.post("Profiler.enable");
  let phase = "";
  let sampler: NodeJS.Timeout | undefined;
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  let peakRss = 0;
  /** The V8 heap when the RSS peaked: the rest is code, buffers and SQLite's cache. */
  let heap = 0;
  let loop = watchLoop();
  const sampleMemory = () => {
    const { rss, heapTotal } = process.memoryUsage();
    if (rss <= peakRss) return;
    peakRss = rss;
    heap = heapTotal;
  };
  process.on("message", (command: Command) => {
    switch (command.type) {
      case "measure":
        phase = command.phase;
        void profiler?.post("Profiler.start");
        cpu0 = process.cpuUsage();
        wall0 = performance.now();
        peakRss = 0;
        sampleMemory();
        loop = watchLoop();
        clearInterval(sampler);
        sampler = setInterval(sampleMemory, 100);
        break;
      case "measured": {
        clearInterval(sampler);
        const cpu = process.cpuUsage(cpu0);
        const wallUs = (performance.now() - wall0) * 1000;
        sampleMemory();
        if (profiler && values.profile !== undefined) {
          const file = join(values.profile, `server-${phase}.cpuprofile`);
          void profiler
            .post("Profiler.stop")
            .then(({ profile }) => writeFile(file, JSON.stringify(profile)))
            .then(() => console.log(`profile of the server: ${file}`));
        }
        send({
          type: "measured",
          cpuPercent: ((cpu.user + cpu.system) / wallUs) * 100,
          peakRssMb: peakRss / MB,
          heapMb: heap / MB,
          loop: loop(),
        });
        break;
      }
      case "publish":
        void publish(command.rate, command.seconds).then((count) => send({ type: "published", count }));
        break;
      case "stop":
        void (async () => {
          await server.close();
          await app.stop();
          process.disconnect();
        })();
        break;
    }
  });

  /** task.done events as a busy fleet makes them, in 10 ms steps, catching up when a tick is late. */
  async function publish(rate: number, seconds: number): Promise<number> {
    const total = rate * seconds;
    let published = 0;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
        for (; published < due; published++) {
          const target = devices[published % devices.length] ?? "";
          app.bus.emit("task.done", {
            id: (0x10000000 + published).toString(16),
            kind: FILE_TASK,
            what: `send models/part-${published}.gcode (2 MB, new)`,
            sync: isPrinter(target) ? "farm" : "backup",
            target,
            path: `models/part-${published}.gcode`,
            size: 2_000_000,
            bytes: 2_000_000,
            ms: 1_800,
          });
        }
        if (published >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 10);
    });
    return published;
  }

  send({ type: "ready", url: `http://127.0.0.1:${address.port}`, rssMb: process.memoryUsage().rss / MB });
}

// ---------------------------------------------------------------------------------------------
// The load

/** Latencies in whole milliseconds, counted per millisecond (a million samples cost 240 KB). */
class Histogram {
  readonly #bins = new Uint32Array(60_001);
  count = 0;
  max = 0;

  add(ms: number): void {
    const bin = Math.min(this.#bins.length - 1, Math.max(0, Math.round(ms)));
    this.#bins[bin] = (this.#bins[bin] ?? 0) + 1;
    this.count++;
    this.max = Math.max(this.max, ms);
  }

  /** The smallest value at or above p percent of the samples. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let ms = 0; ms < this.#bins.length; ms++) {
      seen += this.#bins[ms] ?? 0;
      if (seen >= rank) return ms;
    }
    return this.#bins.length - 1;
  }
}

interface ServerHandle {
  child: ChildProcess;
  next<T extends Report["type"]>(type: T): Promise<Extract<Report, { type: T }>>;
  send(command: Command): void;
}

function startServer(dir: string): ServerHandle {
  const self = fileURLToPath(import.meta.url);
  const args = ["--role", "server", "--dir", dir, "--devices", String(DEVICES)];
  if (values.profile !== undefined) args.push("--profile", values.profile);
  const child = spawn(process.execPath, [...NODE_FLAGS, self, ...args], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`the server process exited with ${code}`))),
  );
  exited.catch(() => undefined);
  return {
    child,
    next: <T extends Report["type"]>(type: T) =>
      Promise.race([
        new Promise<Extract<Report, { type: T }>>((resolve) => {
          const listener = (report: Report) => {
            if (report.type !== type) return;
            child.off("message", listener);
            resolve(report as Extract<Report, { type: T }>);
          };
          child.on("message", listener);
        }),
        exited,
      ]),
    send: (command) => child.send(command),
  };
}

interface RouteResult {
  latency: Histogram;
  errors: number;
  bytes: number;
}

interface RouteLoad {
  routes: Map<string, RouteResult>;
  /** How late this process sent requests (it waits for CPU on a busy machine too). */
  sentLate: Histogram;
}

/**
 * Open loop: request i is due at i/rate s; its latency runs from then to the end of its body, so a
 * server that falls behind shows it in every request queued behind.
 */
async function loadRoutes(
  url: string,
  token: string,
  paths: readonly string[],
  rate: number,
  seconds: number,
): Promise<RouteLoad> {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 60_000 });
  const results = new Map(paths.map((p) => [p, { latency: new Histogram(), errors: 0, bytes: 0 }]));
  const total = Math.round(rate * seconds);
  const gapMs = 1000 / rate;
  const inFlight: Promise<void>[] = [];
  const sentLate = new Histogram();
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + i * gapMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    sentLate.add(performance.now() - due);
    const path = paths[i % paths.length] ?? "";
    const result = results.get(path);
    if (!result) continue;
    inFlight.push(
      (async () => {
        try {
          const response = await request(url + path, {
            dispatcher: agent,
            headers: { authorization: `Bearer ${token}` },
          });
          for await (const chunk of response.body) result.bytes += (chunk as Buffer).length;
          if (response.statusCode !== 200) result.errors++;
        } catch {
          result.errors++;
        }
        result.latency.add(performance.now() - due);
      })(),
    );
  }
  await Promise.all(inFlight);
  await agent.close();
  return { routes: results, sentLate };
}

interface StreamResult {
  delay: Histogram;
  received: number;
  /** Streams that ended before the load did (the server drops a client that does not keep up). */
  ended: number;
}

/** N SSE clients, each on its own connection; the delay of every event at every client. */
async function openStreams(
  url: string,
  token: string,
  clients: number,
): Promise<{ result: StreamResult; close(): void }> {
  const result: StreamResult = { delay: new Histogram(), received: 0, ended: 0 };
  const requests: ClientRequest[] = [];
  let closing = false;
  await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<void>((resolve, reject) => {
          const req = get(
            `${url}/api/v1/events?type=task.done`,
            { agent: false, headers: { authorization: `Bearer ${token}` } },
            (response: IncomingMessage) => {
              if (response.statusCode !== 200) {
                reject(new Error(`the event stream answered ${response.statusCode}`));
                return;
              }
              let text = "";
              response.setEncoding("utf8");
              response.on("data", (chunk: string) => {
                const now = Date.now();
                text += chunk;
                const end = text.lastIndexOf("\n\n");
                if (end < 0) return;
                // Only the envelope's `at` is needed: found by position, without parsing the JSON.
                let from = 0;
                for (;;) {
                  const at = text.indexOf('"at":', from);
                  if (at < 0 || at > end) break;
                  result.delay.add(now - Number.parseInt(text.slice(at + 5, at + 25), 10));
                  result.received++;
                  from = at + 5;
                }
                text = text.slice(end + 2);
              });
              response.on("end", () => closing || result.ended++);
              resolve();
            },
          );
          req.on("error", (error) => (closing ? undefined : reject(error)));
          requests.push(req);
        }),
    ),
  );
  return {
    result,
    close: () => {
      closing = true;
      for (const req of requests) req.destroy();
    },
  };
}

async function runLoad(): Promise<void> {
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  const eventRate = Number(values.events);
  const eventSeconds = Number(values["event-seconds"]);
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-api-"));
  const setupStarted = performance.now();
  const { token, counts } = await buildFixture(fixtureConfig(dir));
  console.log(
    `fixture in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s: ${DEVICES} devices; tasks ` +
      Object.entries(counts)
        .map(([state, n]) => `${n} ${state}`)
        .join(", "),
  );
  const server = startServer(dir);
  try {
    const { url, rssMb } = await server.next("ready");
    console.log(`server started: RSS ${rssMb.toFixed(0)} MB`);
    const paths = ["/api/v1/tasks?limit=100", "/api/v1/devices"];

    // Warm-up (not counted): the first requests compile the routes' code and serializers.
    await loadRoutes(url, token, paths, rate, 2);

    server.send({ type: "measure", phase: "api" });
    const apiLoop = watchLoop();
    const { routes, sentLate } = await loadRoutes(url, token, paths, rate, seconds);
    const apiLoad = apiLoop();
    server.send({ type: "measured" });
    const apiServer = await server.next("measured");

    const streams = await openStreams(url, token, clients);
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const sseLoop = watchLoop();
    server.send({ type: "measure", phase: "sse" });
    server.send({ type: "publish", rate: eventRate, seconds: eventSeconds });
    const { count: published } = await server.next("published");
    // The last events: written within the history's flush time, then fanned out.
    const deadline = performance.now() + 10_000;
    while (streams.result.received < published * clients && performance.now() < deadline) await sleep(20);
    server.send({ type: "measured" });
    const sseServer = await server.next("measured");
    const sseLoad = sseLoop();
    const cpu = process.cpuUsage(cpu0);
    const loadCpu = ((cpu.user + cpu.system) / ((performance.now() - wall0) * 1000)) * 100;
    streams.close();
    const sse = streams.result;

    const rows: [string, string, string, boolean | undefined][] = [];
    for (const [path, r] of routes) {
      const n = r.latency.count;
      const ok = r.errors === 0;
      rows.push([
        `GET ${path} p50 / p99 / max`,
        `${r.latency.percentile(50)} / ${r.latency.percentile(99)} / ${r.latency.max.toFixed(0)} ms` +
          ` (${n} requests, ${(r.bytes / n / 1024).toFixed(0)} KB each${ok ? "" : `, ${r.errors} failed`})`,
        `p99 < ${TARGET.p99Ms} ms`,
        ok && r.latency.percentile(99) < TARGET.p99Ms,
      ]);
    }
    rows.push([
      `server during ${rate} req/s: CPU, peak RSS`,
      `${apiServer.cpuPercent.toFixed(0)} % of a core, ${apiServer.peakRssMb.toFixed(0)} MB (V8 heap ${apiServer.heapMb.toFixed(0)})`,
      `RSS < ${TARGET.rssMb} MB`,
      apiServer.peakRssMb < TARGET.rssMb,
    ]);
    rows.push(["server during requests", loopText(apiServer.loop), "", undefined]);
    rows.push([
      "load process during requests",
      `sent late p99 ${sentLate.percentile(99)} / max ${sentLate.max.toFixed(0)} ms; ${loopText(apiLoad)}`,
      "",
      undefined,
    ]);
    const expected = published * clients;
    rows.push([
      `SSE ${eventRate} events/s → ${clients} clients: p50 / p99 / max`,
      `${sse.delay.percentile(50)} / ${sse.delay.percentile(99)} / ${sse.delay.max.toFixed(0)} ms`,
      `p99 < ${TARGET.sseP99Ms} ms`,
      sse.received === expected && sse.delay.percentile(99) < TARGET.sseP99Ms,
    ]);
    rows.push([
      "SSE delivered",
      `${sse.received} / ${expected}${sse.ended > 0 ? `, ${sse.ended} streams dropped` : ""}`,
      "all",
      sse.received === expected,
    ]);
    rows.push([
      "server during SSE: CPU, peak RSS",
      `${sseServer.cpuPercent.toFixed(0)} % of a core, ${sseServer.peakRssMb.toFixed(0)} MB (V8 heap ${sseServer.heapMb.toFixed(0)})`,
      `RSS < ${TARGET.rssMb} MB`,
      sseServer.peakRssMb < TARGET.rssMb,
    ]);
    rows.push(["server during SSE", loopText(sseServer.loop), "", undefined]);
    rows.push([
      "clients' process during SSE",
      `CPU ${loadCpu.toFixed(0)} % of a core; ${loopText(sseLoad)}`,
      "",
      undefined,
    ]);
    printTable(rows);
    // Two shared cores run other work too: the load says how much the figures above waited for CPU.
    const [one, five] = loadavg();
    console.log(
      `machine: ${availableParallelism()} cores, load average ${one?.toFixed(1)} (1 min), ${five?.toFixed(1)} (5 min)`,
    );
  } finally {
    // A server that died already has no exit left to wait for.
    if (server.child.connected && server.child.exitCode === null && server.child.signalCode === null) {
      const exited = new Promise((resolve) => server.child.once("exit", resolve));
      server.send({ type: "stop" });
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function printTable(rows: readonly [string, string, string, boolean | undefined][]): void {
  const table = [
    ["measure", "here", "target", ""],
    ...rows.map(([a, b, c, pass]) => [a, b, c, pass === undefined ? "" : pass ? "PASS" : "MISS"]),
  ];
  const widths = [0, 1, 2, 3].map((col) => Math.max(...table.map((row) => (row[col] ?? "").length)));
  for (const row of table) console.log(row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join("  "));
}

if (values.role === "server") await runServer(values.dir ?? "");
else await runLoad();
