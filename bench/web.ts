/**
 * Benchmark (not a test): the dashboard's farm page over loopback with N printers (half PrusaLink,
 * half OctoPrint, served by two `ferry sim` processes), in Debian's headless Chromium:
 * - JS transferred for the first load (bytes on the wire, compressed as the server sends them),
 * - time from navigation to the grid holding every printer's card,
 * - while every printer updates once a second (a `printer.temperatures` event each, spread over
 *   the second, and 10 `printer.state` changes a second, published on the node's bus as its farm
 *   workers publish them): long tasks (> 50 ms) and frame times, from the page's
 *   PerformanceObserver and requestAnimationFrame.
 *
 *   npm run bench:web -- [--printers 200] [--seconds 20] [--idle]   (--idle: no updates, the machine's own noise)
 * Targets: JS < 300 kB, grid filled < 1.5 s, no long task over 50 ms during the updates.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildWeb, isStale } from "../scripts/build-web.ts";
import { createApp } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import { DASHBOARD_DIR, FerryServer } from "../src/server/server.ts";
import { launchBrowser } from "../test/support/browser.ts";
import { percentile, startSimFleet } from "./support/sim-fleet.ts";

const { values } = parseArgs({
  options: {
    printers: { type: "string", default: "200" },
    seconds: { type: "string", default: "20" },
    /** No updates: what the page does at rest, for comparison (the machine's own noise). */
    idle: { type: "boolean", default: false },
  },
});
const PRINTERS = Number(values.printers);
const SECONDS = Number(values.seconds);
const TARGET = { jsKb: 300, gridMs: 1500, longTaskMs: 50 };
const PASSWORD = "bench-web-password";
/** Put in the page before its scripts: when the grid was filled, long tasks, frame times. */
const PROBE = `
  window.__bench = { gridAt: null, longTasks: [], frames: [], recordFrames: false };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__bench.longTasks.push({ at: e.startTime, ms: e.duration });
  }).observe({ type: "longtask", buffered: true });
  const want = ${PRINTERS};
  const watch = new MutationObserver(() => {
    if (window.__bench.gridAt === null && document.querySelectorAll("li[data-printer]").length >= want) {
      window.__bench.gridAt = performance.now();
      watch.disconnect();
    }
  });
  watch.observe(document, { childList: true, subtree: true });
  let last = performance.now();
  const frame = (now) => {
    if (window.__bench.recordFrames) window.__bench.frames.push(now - last);
    last = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
`;

interface Probe {
  gridAt: number | null;
  longTasks: { at: number; ms: number }[];
  frames: number[];
}

if (isStale()) await buildWeb();
const work = await mkdtemp(join(tmpdir(), "ferry-bench-web-"));
const fleet = await startSimFleet(PRINTERS);
const { prusaCount } = fleet;
const sims = fleet.children;
const names = Array.from({ length: PRINTERS }, (_, i) =>
  i < prusaCount ? `mk4-${String(i).padStart(3, "0")}` : `octo-${String(i).padStart(3, "0")}`,
);
const tags = ["PLA", "PETG", "ASA", "TPU"];
try {
  const yaml = [
    "data_dir: ./data",
    "server:",
    "  listen: 127.0.0.1:0",
    "devices:",
    ...names.map((name, i) =>
      i < prusaCount
        ? `  ${name}: { type: prusalink, url: "http://127.0.0.1:${fleet.printer(i).port}", username: maker, password: bench, farm: true, model: MK4, tags: [${tags[i % 4]}] }`
        : `  ${name}: { type: octoprint, url: "http://127.0.0.1:${fleet.printer(i).port}", api_key: bench, farm: true, tags: [${tags[i % 4]}] }`,
    ),
    "farm:",
    "  interval: 1s",
    "",
  ].join("\n");
  const configPath = join(work, "ferry.yaml");
  await writeFile(configPath, yaml);
  const config = parseConfig(yaml, configPath, { deviceKinds, env: {} });
  const app = await createApp(config, { logger: silentLogger });
  await app.start();
  const server = await FerryServer.create(
    app,
    config.server ?? { listen: { host: "127.0.0.1", port: 0 }, trustProxy: false },
    {
      env: {},
      announce: () => undefined,
      dashboard: DASHBOARD_DIR,
    },
  );
  const url = await server.start();
  await app.stored.accounts.addUser({ name: "bench", role: "operator", password: PASSWORD });
  const browser = await launchBrowser();
  let ticker: NodeJS.Timeout | undefined;
  try {
    // Every printer seen once, so the first answer carries their states and temperatures.
    const started = Date.now();
    while ((await app.farm.printers()).some((p) => p.connection === null)) {
      if (Date.now() - started > 60_000) throw new Error("not every printer was seen within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const signIn = await context.request.post(`${url}/api/v1/session`, {
      data: { name: "bench", password: PASSWORD },
    });
    if (!signIn.ok()) throw new Error(`sign-in: ${signIn.status()}`);
    const page = await context.newPage();
    await page.addInitScript(PROBE);
    const js: Promise<number>[] = [];
    page.on("requestfinished", (request) => {
      if (request.resourceType() === "script") js.push(request.sizes().then((s) => s.responseBodySize));
    });
    await page.goto(`${url}/`);
    // Polled from here: the page's CSP (no eval) refuses waitForFunction's string predicates.
    const loadStarted = Date.now();
    while (!(await page.evaluate("window.__bench !== undefined && window.__bench.gridAt !== null"))) {
      if (Date.now() - loadStarted > 30_000) throw new Error("the grid was not filled within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const load = await page.evaluate<Probe>("window.__bench");
    const jsBytes = (await Promise.all(js)).reduce((a, b) => a + b, 0);
    const gridMs = load.gridAt ?? NaN;
    const loadLongTasks = load.longTasks.length;
    await page.getByText("● live").waitFor();

    // The updates: each printer once a second, spread evenly; 10 state changes a second.
    await page.evaluate(
      "window.__bench.longTasks = []; window.__bench.recordFrames = true; window.__bench.from = performance.now();",
    );
    let i = 0;
    const perTick = Math.max(1, Math.round(PRINTERS / 50));
    ticker = setInterval(() => {
      if (values.idle) return;
      for (let k = 0; k < perTick; k++, i++) {
        const name = names[i % PRINTERS] ?? "";
        const wobble = Math.sin(i / 7) * 3;
        app.bus.emit("printer.temperatures", {
          printer: name,
          temperatures: [
            { name: "tool0", actual: 212 + wobble, target: 215 },
            { name: "bed", actual: 58 + wobble / 3, target: 60 },
          ],
        });
        if (i % Math.max(1, Math.round(PRINTERS / 10)) === 0)
          app.bus.emit("printer.state", {
            printer: name,
            connection: "online",
            activity: (i / 10) % 2 < 1 ? "busy" : "idle",
            rawState: null,
            before: null,
          });
      }
    }, 20);
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    clearInterval(ticker);
    ticker = undefined;
    const during = await page.evaluate<Probe>("window.__bench");
    const longest = Math.max(0, ...during.longTasks.map((t) => t.ms));
    const frames = during.frames.slice().sort((a, b) => a - b);
    const sent = i;
    const from = await page.evaluate<number>("window.__bench.from");
    const when = during.longTasks
      .map((t) => `${t.ms.toFixed(0)} ms at +${((t.at - from) / 1000).toFixed(1)} s`)
      .join(", ");

    const ok = (pass: boolean) => (pass ? "ok" : "MISSED");
    console.log(`bench:web — ${PRINTERS} printers, Chromium ${browser.version()}, ${SECONDS} s of updates`);
    console.log(
      `  JS transferred (first load)  ${(jsBytes / 1000).toFixed(1)} kB   target < ${TARGET.jsKb} kB  ${ok(jsBytes / 1000 < TARGET.jsKb)}`,
    );
    console.log(
      `  grid filled                  ${gridMs.toFixed(0)} ms   target < ${TARGET.gridMs} ms  ${ok(gridMs < TARGET.gridMs)}  (${loadLongTasks} long tasks while loading)`,
    );
    console.log(`  updates sent                 ${sent} (${(sent / SECONDS).toFixed(0)}/s)`);
    console.log(
      `  long tasks during updates    ${during.longTasks.length}, longest ${longest.toFixed(0)} ms${when ? ` (${when})` : ""}   target none > ${TARGET.longTaskMs} ms  ${ok(longest <= TARGET.longTaskMs)}`,
    );
    console.log(
      `  frame time                   p50 ${percentile(frames, 50).toFixed(1)} ms, p99 ${percentile(frames, 99).toFixed(1)} ms, max ${(frames.at(-1) ?? NaN).toFixed(1)} ms (${frames.length} frames)`,
    );
  } finally {
    if (ticker) clearInterval(ticker);
    await browser.close();
    await server.close();
    await app.stop();
  }
} finally {
  for (const sim of sims) sim.kill();
  await rm(work, { recursive: true, force: true });
}
