/**
 * Notifications and metrics on a running farm: the app and its server as `ferry serve` builds them,
 * over a simulated PrusaLink printer (printer time 600× faster), with a webhook receiver (in this
 * process; it refuses the first delivery, so the retry goes through the durable task queue), a real
 * Mosquitto (TLS, password) and a local SMTP server in its own process (STARTTLS, AUTH).
 *
 * A finished job makes exactly one webhook (its signature checked here), one MQTT message (seen by
 * a subscriber) and one e-mail (received). The owner then switches their notifications off through
 * the API: the next job makes none. /metrics parses with a Prometheus text-format parser, and its
 * counters move with the farm's work.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { simpleParser } from "mailparser";
import { connectAsync, type MqttClient } from "mqtt";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { fetch } from "undici";
import { createApp, type App } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import type { Job } from "../src/farm/jobs.ts";
import { FerryServer } from "../src/server/server.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { localAdapter } from "../src/storage/local/local.ts";
import { testOptions, tlsCertificate, Unavailable } from "./servers/common.ts";
import { startMosquitto, type Mosquitto } from "./servers/mosquitto.ts";
import { folderJobFiles } from "./support/farm-files.ts";
import { startSmtpSink, type SmtpSink } from "./support/smtp-sink.ts";
import { waitFor } from "./support/wait.ts";

const PASSWORD = "notify-e2e";
const SPEED = 600;
const HOOK_SECRET = randomBytes(16).toString("hex");
const SMTP_USER = "ferry";
const SMTP_PASSWORD = "smtp-pw";
const DASHBOARD = "https://ferry.lab.example";

interface Hook {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** GET/PATCH /api/v1/me/notifications. */
interface Settings {
  enabled: boolean;
  email: string | null;
  updatedAt: string | null;
}

interface MqttMessage {
  topic: string;
  retain: boolean;
  body: { event?: string; job?: { id: string; file: string }; recipients?: string[]; activity?: string };
}

function gcode(tag: string): Buffer {
  return Buffer.from(
    [`; ${tag}`, "M140 S60", "M104 S215", "G28", "; estimated printing time (normal mode) = 10m 0s", ""].join(
      "\n",
    ),
  );
}

/** A sample of a metric, by name and labels (undefined: not there). */
type Families = ReturnType<typeof parsePrometheusTextFormat>;
function sample(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.find((f) => f.name === name);
  const metric = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!metric) return undefined;
  if ("value" in metric) return Number(metric.value);
  if ("count" in metric) return Number(metric.count);
  return undefined;
}

let broker: Mosquitto | undefined;
let unavailable: string | undefined;
try {
  broker = await startMosquitto();
} catch (error) {
  if (!(error instanceof Unavailable)) throw error;
  unavailable = error.message;
}

describe("notifications and metrics on a running farm", { timeout: 240_000 }, () => {
  let dir: string;
  let mk4: PrusaLinkSim;
  let app: App;
  let server: FerryServer;
  let base: string;
  let hookServer: Server;
  let smtp: SmtpSink;
  let subscriber: MqttClient;
  let makerToken: string;
  let promToken: string;
  const hooks: Hook[] = [];
  const cleanup: (() => Promise<unknown>)[] = [];
  const mqttMessages: MqttMessage[] = [];

  before(async () => {
    if (!broker) return;
    dir = await mkdtemp(join(tmpdir(), "ferry-notify-e2e-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const tls = await tlsCertificate(join(dir, "tls"));
    smtp = await startSmtpSink({ tls, username: SMTP_USER, password: SMTP_PASSWORD });
    cleanup.push(() => smtp.close());
    // The receiver refuses the first delivery: the task retries it.
    hookServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const status = hooks.length === 0 ? 503 : 204;
        hooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), status });
        res.statusCode = status;
        res.end();
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise((resolve) => hookServer.close(resolve)));
    const hookAddress = hookServer.address();
    assert.ok(typeof hookAddress === "object" && hookAddress);

    // A persistent session: what is published while it reconnects after a broker restart waits for it.
    subscriber = await connectAsync(broker.url, {
      ca: readFileSync(broker.tls.cert),
      ...broker.login,
      clientId: "ferry-notify-test",
      clean: false,
      reconnectPeriod: 200,
    });
    cleanup.push(() => subscriber.endAsync());
    subscriber.on("message", (topic, payload, packet) =>
      mqttMessages.push({
        topic,
        retain: packet.retain,
        body: JSON.parse(payload.toString()) as MqttMessage["body"],
      }),
    );
    await subscriber.subscribeAsync("ferry/#", { qos: 1 });

    const library = join(dir, "library");
    await mkdir(library);
    await writeFile(join(library, "hook.gcode"), gcode("a hook"));
    await writeFile(join(library, "clip.gcode"), gcode("a clip"));
    mk4 = await PrusaLinkSim.start({ password: PASSWORD, speed: SPEED });
    cleanup.push(() => mk4.close());
    const config = parseConfig(
      `data_dir: ./data
server:
  listen: 127.0.0.1:0
devices:
  mk4-a: { type: prusalink, url: "${mk4.url}", password: "${PASSWORD}", farm: true, model: MK4 }
farm:
  interval: 100ms
notify:
  dashboard_url: ${DASHBOARD}
  channels:
    hook: { type: webhook, url: "http://127.0.0.1:${hookAddress.port}/ferry", secret: "\${HOOK_SECRET}" }
    broker: { type: mqtt, url: "${broker.url}", username: ${broker.login.username}, password: "\${MQTT_PASSWORD}", ca_file: ${broker.tls.cert} }
    mail: { type: email, host: 127.0.0.1, port: ${smtp.port}, username: ${SMTP_USER}, password: "\${SMTP_PASSWORD}", ca_file: ${tls.cert}, from: "Ferry <ferry@lab.example>" }
  rules:
    - on: job.finished
      to: owner
      via: [hook, broker, mail]
`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: { HOOK_SECRET, MQTT_PASSWORD: broker.login.password, SMTP_PASSWORD } },
    );
    const adapter = localAdapter.create(
      { path: library },
      { name: "library", logger: silentLogger, baseDir: dir },
    );
    app = await createApp(config, { logger: silentLogger, jobFiles: folderJobFiles(adapter) });
    cleanup.push(() => app.stop());
    await app.start();
    assert.ok(config.server);
    server = await FerryServer.create(app, config.server, { env: {}, announce: () => undefined });
    cleanup.push(() => server.close());
    base = await server.start();
    const accounts = app.stored.accounts;
    await accounts.addUser({ name: "maker", role: "user" });
    await accounts.addUser({ name: "prometheus", role: "viewer" });
    makerToken = (await accounts.createToken({ user: "maker", name: "cli", role: "user", expiresAt: null }))
      .secret;
    promToken = (
      await accounts.createToken({ user: "prometheus", name: "scrape", role: "viewer", expiresAt: null })
    ).secret;
  });

  after(async () => {
    if (!broker) return;
    // What was started, last first (a before that failed midway started only some).
    for (const step of cleanup.reverse()) await step();
    await broker.close();
  });

  const api = async (path: string, token: string, init: { method?: string; body?: unknown } = {}) => {
    const response = await fetch(`${base}${path}`, {
      method: init.method ?? "GET",
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await response.text();
    return { status: response.status, text, json: () => JSON.parse(text) as Settings };
  };

  const scrape = async () => {
    const response = await api("/metrics", promToken);
    assert.equal(response.status, 200, response.text);
    return parsePrometheusTextFormat(response.text);
  };

  /** Submits a job as maker on a clear bed and waits until it is printed. */
  async function print(file: string): Promise<Job> {
    await app.farm.markBedClear("mk4-a", "olga");
    const [job] = await app.farm.submit({
      file: { id: file, name: file, sha256: null },
      owner: "maker",
      role: "user",
    });
    assert.ok(job);
    return waitFor(
      `job ${job.id} to be printed`,
      async () => {
        const now = await app.farm.get(job.id);
        return now.state === "printed" ? now : undefined;
      },
      { timeoutMs: 90_000, detail: async () => JSON.stringify(await app.farm.get(job.id)) },
    );
  }

  /** Every notification task has settled (none queued or running). */
  const notificationsSettled = () =>
    waitFor("the notification tasks to settle", async () => {
      await app.notifier?.idle();
      const tasks = await app.stored.queue.list({ limit: 1000 });
      return (
        tasks.filter((t) => t.kind.startsWith("notify.") && (t.status === "queued" || t.status === "running"))
          .length === 0
      );
    });

  test(
    "a finished job: one webhook (signed), one MQTT message, one e-mail",
    testOptions(unavailable),
    async () => {
      const set = await api("/api/v1/me/notifications", makerToken, {
        method: "PATCH",
        body: { email: "maker@lab.example" },
      });
      assert.equal(set.status, 200, set.text);
      assert.deepEqual(
        { ...set.json(), updatedAt: undefined },
        { enabled: true, email: "maker@lab.example", updatedAt: undefined },
      );
      const bad = await api("/api/v1/me/notifications", makerToken, {
        method: "PATCH",
        body: { email: "not an address" },
      });
      assert.equal(bad.status, 400, "a bad address is refused");
      assert.match(bad.text, /email/);

      const before = await scrape();
      const job = await print("hook.gcode");

      // The webhook: refused once, delivered by the retry, the same signed body both times.
      const delivered = await waitFor("the webhook to be delivered", () =>
        hooks.find((h) => h.status === 204),
      );
      const { headers, body } = delivered;
      const timestamp = String(headers["x-ferry-timestamp"]);
      const expected = `sha256=${createHmac("sha256", HOOK_SECRET).update(`${timestamp}.${body}`).digest("hex")}`;
      const signature = String(headers["x-ferry-signature"]);
      assert.equal(signature.length, expected.length);
      assert.ok(
        timingSafeEqual(Buffer.from(signature), Buffer.from(expected)),
        "the signature is the secret's",
      );
      assert.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 300, "the timestamp is now");
      assert.equal(headers["x-ferry-event"], "job.finished");
      const hook = JSON.parse(body) as {
        event: string;
        job: { id: string; file: string; owner: string };
        printer: string;
        link: string;
        subject: string;
        recipients: string[];
      };
      assert.equal(hook.event, "job.finished");
      assert.deepEqual(
        [hook.job.id, hook.job.file, hook.job.owner, hook.printer],
        [job.id, "hook.gcode", "maker", "mk4-a"],
      );
      assert.equal(hook.link, `${DASHBOARD}/jobs/${job.id}`);
      assert.equal(hook.subject, "Printed: hook.gcode on mk4-a");
      assert.deepEqual(hook.recipients, ["maker"]);
      const [refused] = hooks;
      assert.ok(refused);
      assert.equal(refused.status, 503);
      assert.equal(refused.body, body, "the retry sends the same body");
      assert.equal(refused.headers["x-ferry-delivery"], headers["x-ferry-delivery"]);

      // MQTT: the job's notice, and the printer's state, retained.
      const notice = await waitFor("the MQTT notice", () =>
        mqttMessages.find((m) => m.topic === `ferry/jobs/${job.id}/events`),
      );
      assert.equal(notice.body.event, "job.finished");
      assert.deepEqual(notice.body.recipients, ["maker"]);
      assert.ok(broker);
      const late = await connectAsync(broker.url, { ca: readFileSync(broker.tls.cert), ...broker.login });
      try {
        const retained = new Promise<MqttMessage["body"]>((resolve) =>
          late.on("message", (topic, payload, packet) => {
            if (topic === "ferry/printers/mk4-a/state" && packet.retain)
              resolve(JSON.parse(payload.toString()) as MqttMessage["body"]);
          }),
        );
        await late.subscribeAsync("ferry/printers/+/state", { qos: 1 });
        assert.ok((await retained).activity, "a late subscriber gets the printer's state at once");
      } finally {
        await late.endAsync();
      }

      // The e-mail, as the SMTP server received it.
      const mail = await waitFor("the e-mail", () => smtp.messages[0]);
      assert.deepEqual(mail.to, ["maker@lab.example"]);
      const parsed = await simpleParser(mail.raw);
      assert.equal(parsed.subject, "Printed: hook.gcode on mk4-a");
      assert.match(parsed.text ?? "", /Job: hook\.gcode/);
      assert.match(parsed.text ?? "", /Printer: mk4-a/);
      assert.match(parsed.text ?? "", /Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
      assert.ok(parsed.text?.includes(`${DASHBOARD}/jobs/${job.id}`), "the dashboard link");

      // Exactly one of each: nothing more once every notification task has settled.
      await notificationsSettled();
      assert.equal(hooks.filter((h) => h.status === 204).length, 1);
      assert.equal(mqttMessages.filter((m) => m.topic.startsWith("ferry/jobs/")).length, 1);
      assert.equal(smtp.messages.length, 1);

      // /metrics moved with the farm's work.
      const afterRun = await scrape();
      assert.equal(
        (sample(afterRun, "ferry_job_transitions_total", { state: "printed" }) ?? 0) -
          (sample(before, "ferry_job_transitions_total", { state: "printed" }) ?? 0),
        1,
      );
      assert.ok(
        (sample(afterRun, "ferry_transfer_bytes_total", { device: "mk4-a" }) ?? 0) >=
          (sample(before, "ferry_transfer_bytes_total", { device: "mk4-a" }) ?? 0) + gcode("a hook").length,
        "the upload's bytes",
      );
      // The parser folds a labelled histogram into its buckets (one outcome so far: printed).
      const printTimes = afterRun.find((f) => f.name === "ferry_job_print_duration_seconds")?.metrics[0];
      assert.equal(
        printTimes && "buckets" in printTimes ? printTimes.buckets["+Inf"] : undefined,
        "1",
        "one print timed",
      );
      assert.equal(
        sample(afterRun, "ferry_task_retries_total", { kind: "notify.webhook" }),
        1,
        "the refused webhook",
      );
      assert.equal(sample(afterRun, "ferry_jobs", { state: "printed" }), 1);
      const printers = afterRun.find((f) => f.name === "ferry_printers")?.metrics ?? [];
      assert.deepEqual(
        printers.map((m) => [m.labels?.connection, "value" in m ? Number(m.value) : NaN]),
        [["online", 1]],
        "one printer, online",
      );
      assert.ok(
        sample(afterRun, "ferry_printer_temperature_celsius", { printer: "mk4-a", heater: "bed" }) !==
          undefined,
      );
      assert.ok(sample(afterRun, "nodejs_eventloop_lag_seconds") !== undefined, "event-loop lag");

      // Every metric the Grafana dashboard in docs/ queries is served.
      const dashboard = readFileSync(new URL("../docs/grafana-dashboard.json", import.meta.url), "utf8");
      const names = new Set(
        [...dashboard.matchAll(/\b((?:ferry|nodejs|process)_[a-z0-9_]+)/g)].map(([, name]) =>
          (name ?? "").replace(/_bucket$/, ""),
        ),
      );
      assert.ok(names.size > 10);
      const served = new Set(afterRun.map((f) => f.name));
      assert.deepEqual(
        [...names].filter((name) => !served.has(name)),
        [],
        "queried by the dashboard, not served",
      );
    },
  );

  test(
    "a user who switched notifications off is told nothing; SSE clients are counted",
    testOptions(unavailable),
    async () => {
      const off = await api("/api/v1/me/notifications", makerToken, {
        method: "PATCH",
        body: { enabled: false },
      });
      assert.equal(off.status, 200, off.text);
      assert.equal(off.json().enabled, false);

      const stream = new AbortController();
      const events = await fetch(`${base}/api/v1/events`, {
        headers: { authorization: `Bearer ${promToken}` },
        signal: stream.signal,
      });
      assert.equal(events.status, 200);
      assert.equal(sample(await scrape(), "ferry_sse_clients"), 1);
      stream.abort();

      await print("clip.gcode");
      await notificationsSettled();
      assert.equal(hooks.filter((h) => h.status === 204).length, 1, "no second webhook");
      assert.equal(
        mqttMessages.filter((m) => m.topic.startsWith("ferry/jobs/")).length,
        1,
        "no second MQTT notice",
      );
      assert.equal(smtp.messages.length, 1, "no second e-mail");
      const metrics = await scrape();
      assert.equal(sample(metrics, "ferry_job_transitions_total", { state: "printed" }), 2);
    },
  );

  test(
    "a broker that restarts loses nothing, and the farm does not wait for it",
    testOptions(unavailable),
    async () => {
      assert.ok(broker);
      const on = await api("/api/v1/me/notifications", makerToken, {
        method: "PATCH",
        body: { enabled: true },
      });
      assert.equal(on.status, 200, on.text);
      await broker.stop();
      // The job prints and its webhook and e-mail go while the broker is away.
      const job = await print("hook.gcode");
      await waitFor("the second webhook", () => hooks.filter((h) => h.status === 204).length === 2);
      await waitFor("the second e-mail", () => smtp.messages.length === 2);
      assert.equal(
        mqttMessages.filter((m) => m.topic === `ferry/jobs/${job.id}/events`).length,
        0,
        "nothing reached the broker while it was away",
      );
      await broker.start();
      const notice = await waitFor("the notice published while the broker was away", () =>
        mqttMessages.find((m) => m.topic === `ferry/jobs/${job.id}/events`),
      );
      assert.equal(notice.body.event, "job.finished");
      await notificationsSettled();
      assert.equal(mqttMessages.filter((m) => m.topic === `ferry/jobs/${job.id}/events`).length, 1);
    },
  );
});
