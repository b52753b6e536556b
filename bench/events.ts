/**
 * Benchmark (not a test): the server's event stream fan-out. Events are published at a steady
 * rate on a bus recorded by the event history (SQLite in a temp folder, or PostgreSQL with
 * --postgres: FERRY_TEST_DATABASE_URL or a throwaway server), and streamed by the hub to N SSE
 * clients over loopback HTTP. Prints the delivery delay (publication to parsed at the client)
 * percentiles and the peak RSS against the targets. The clients run in this process too, so the
 * RSS is an upper bound for the server.
 *
 *   npm run bench:events -- [--rate 1000] [--clients 100] [--seconds 10] [--postgres]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { get, createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { EventBus } from "../src/core/events.ts";
import { EventHub, eventStreamRequest } from "../src/server/events/hub.ts";
import { createEventHistory } from "../src/store/event-history.ts";
import { openStore } from "../src/store/store.ts";
import type { EngineEvents } from "../src/sync/events.ts";
import { testPostgres } from "../test/servers/postgres.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    clients: { type: "string", default: "100" },
    seconds: { type: "string", default: "10" },
    postgres: { type: "boolean", default: false },
  },
});
const RATE = Number(values.rate);
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const TARGET = { p99Ms: 200, rssMb: 300 };

const dataDir = await mkdtemp(join(tmpdir(), "ferry-bench-events-"));
const pg = values.postgres ? await testPostgres() : undefined;
if (pg?.reason) throw new Error(pg.reason);
const store = await openStore({ dataDir, ...(pg ? { databaseUrl: await pg.database() } : {}) });
const bus = new EventBus<EngineEvents>({ node: "bench" });
const history = await createEventHistory(store, bus);
const hub = new EventHub(history);
const server = createServer((req, res) => {
  const parsed = eventStreamRequest(req);
  if (parsed.ok) void hub.serve(req, res, parsed.filter);
  else res.writeHead(400).end(parsed.message);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as { port: number };

const delays: number[] = [];
let received = 0;
await Promise.all(
  Array.from(
    { length: CLIENTS },
    () =>
      new Promise<void>((resolve, reject) => {
        get(`http://127.0.0.1:${port}/api/v1/events`, { agent: false }, (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
            let end: number;
            while ((end = text.indexOf("\n\n")) >= 0) {
              const block = text.slice(0, end);
              text = text.slice(end + 2);
              const data = block.split("\n").find((line) => line.startsWith("data: "));
              if (data === undefined) continue;
              const { at } = JSON.parse(data.slice(6)) as { at: number };
              delays.push(Date.now() - at);
              received++;
            }
          });
          resolve();
        }).on("error", reject);
      }),
  ),
);

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
const total = RATE * SECONDS;
let published = 0;
const started = performance.now();
// Published in 10 ms steps, catching up to the rate from the start (a late tick publishes more).
await new Promise<void>((resolve) => {
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
    for (; published < due; published++) {
      bus.emit("task.done", {
        id: `task-${published}`,
        kind: "sync.file",
        what: `send models/part-${published}.gcode (2 MB, new)`,
        sync: "farm",
        target: `mk4-${published % 100}`,
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
const deadline = Date.now() + 30_000;
while (received < total * CLIENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
clearInterval(sampler);

delays.sort((a, b) => a - b);
const pct = (p: number) => delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))] ?? NaN;
const rssMb = peakRss / 1024 / 1024;
console.log(
  `${store.dialect}: ${RATE} events/s for ${SECONDS} s to ${CLIENTS} clients: ` +
    `${received}/${total * CLIENTS} delivered, dropped ${hub.dropped}; delay p50 ${pct(50)} ms, ` +
    `p99 ${pct(99)} ms (target < ${TARGET.p99Ms}), max ${delays.at(-1)} ms; ` +
    `peak RSS ${rssMb.toFixed(0)} MB (target < ${TARGET.rssMb}, clients included)`,
);
hub.close();
server.closeAllConnections();
server.close();
await history.close();
await store.close();
await pg?.close();
await rm(dataDir, { recursive: true, force: true });
