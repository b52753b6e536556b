/**
 * What `GET /metrics` shows (docs/metrics.md), in Prometheus' text format through prom-client, in
 * a registry of this server's own (never the library's global one: tests run several servers in
 * one process). Counters follow the event bus from the server's start; gauges are read at each
 * scrape from the farm, the queue and the store. Node's own metrics (event-loop lag, heap, CPU)
 * keep their standard names (`nodejs_*`, `process_*`).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { App } from "../app.ts";
import { DEVICE_STATES } from "../store/devices.ts";
import { JOB_STATES } from "../farm/states.ts";
import type { PrinterView } from "../farm/printer-views.ts";

/** A scrape reads the printers once for every metric that needs them. */
const PRINTERS_FRESH_MS = 1_000;
/** Print times: from minutes to two days. */
const PRINT_BUCKETS_S = [60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400, 172_800];
const TASK_STATES = ["queued", "running", "done", "dead"] as const;
/** Notifications are tasks too, but they move no device's files. */
const isTransfer = (kind: string) => !kind.startsWith("notify.");

/** The device a task's target label names ("mk4-a:models" → mk4-a). */
const deviceOf = (target: string | undefined) => (target === undefined ? undefined : target.split(":")[0]);

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #app: App;
  readonly #off: (() => void)[] = [];
  #sseClients: () => number = () => 0;
  #printers: { at: number; views: Promise<PrinterView[]> } | undefined;

  constructor(app: App) {
    this.#app = app;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });

    const printerViews = () => this.#printerViews();
    const sseClients = () => this.#sseClients();
    new Gauge({
      name: "ferry_printers",
      help: "Farm printers by connection and activity, as this node sees them (unknown: driven by another node)",
      labelNames: ["connection", "activity"],
      registers,
      async collect() {
        this.reset();
        for (const p of await printerViews())
          this.inc({ connection: p.connection ?? "unknown", activity: p.activity ?? "unknown" });
      },
    });
    new Gauge({
      name: "ferry_printer_temperature_celsius",
      help: "A farm printer's heater temperature as last reported",
      labelNames: ["printer", "heater"],
      registers,
      async collect() {
        this.reset();
        for (const p of await printerViews())
          for (const t of p.temperatures) this.set({ printer: p.name, heater: t.name }, t.actual);
      },
    });
    new Gauge({
      name: "ferry_printer_target_temperature_celsius",
      help: "A farm printer's heater target (0: off)",
      labelNames: ["printer", "heater"],
      registers,
      async collect() {
        this.reset();
        for (const p of await printerViews())
          for (const t of p.temperatures)
            if (t.target !== undefined) this.set({ printer: p.name, heater: t.name }, t.target);
      },
    });
    new Gauge({
      name: "ferry_printer_job_progress_ratio",
      help: "Progress of the job on a farm printer (0..1)",
      labelNames: ["printer"],
      registers,
      async collect() {
        this.reset();
        for (const p of await printerViews())
          if (p.job?.progress !== null && p.job?.progress !== undefined)
            this.set({ printer: p.name }, p.job.progress);
      },
    });
    new Gauge({
      name: "ferry_jobs",
      help: "Print jobs in each state (the farm's queue)",
      labelNames: ["state"],
      registers,
      async collect() {
        const rows = await app.stored.store.db
          .selectFrom("jobs")
          .select(["state", (eb) => eb.fn.countAll<number | string | bigint>().as("n")])
          .groupBy("state")
          .execute();
        const counts = new Map(rows.map((r) => [r.state, Number(r.n)]));
        for (const state of JOB_STATES) this.set({ state }, counts.get(state) ?? 0);
      },
    });
    new Gauge({
      name: "ferry_tasks",
      help: "Durable tasks (transfers, uploads, notifications) in each state",
      labelNames: ["state"],
      registers,
      async collect() {
        const counts = await app.stored.queue.counts();
        for (const state of TASK_STATES) this.set({ state }, counts[state]);
      },
    });
    new Gauge({
      name: "ferry_devices",
      help: "Devices in each state, as the connection checkers last recorded it",
      labelNames: ["state"],
      registers,
      async collect() {
        const counts = new Map<string, number>();
        for (const d of await app.stored.deviceStates.all())
          counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
        for (const state of DEVICE_STATES) this.set({ state }, counts.get(state) ?? 0);
      },
    });
    new Gauge({
      name: "ferry_transfer_rate_bytes_per_second",
      help: "Bytes per second of the transfers running on this node now, per device",
      labelNames: ["device"],
      registers,
      collect() {
        this.reset();
        const rates = new Map<string, number>();
        for (const t of app.inFlight.list()) {
          const device = deviceOf(t.target);
          if (device === undefined || !isTransfer(t.kind)) continue;
          rates.set(device, (rates.get(device) ?? 0) + (t.rate ?? 0));
        }
        for (const [device, rate] of rates) this.set({ device }, rate);
      },
    });
    new Gauge({
      name: "ferry_sse_clients",
      help: "Clients of the event stream (GET /api/v1/events) connected now",
      registers,
      collect() {
        this.set(sseClients());
      },
    });

    const jobs = new Counter({
      name: "ferry_job_transitions_total",
      help: "Jobs that entered each state",
      labelNames: ["state"],
      registers,
    });
    const printTime = new Histogram({
      name: "ferry_job_print_duration_seconds",
      help: "From a job's start on the printer to its end, by how it ended",
      labelNames: ["outcome"],
      buckets: PRINT_BUCKETS_S,
      registers,
    });
    const bytes = new Counter({
      name: "ferry_transfer_bytes_total",
      help: "Bytes delivered by finished transfer tasks (syncs, farm uploads), per device",
      labelNames: ["device"],
      registers,
    });
    const done = new Counter({
      name: "ferry_tasks_completed_total",
      help: "Tasks finished (skipped ones included), per kind",
      labelNames: ["kind"],
      registers,
    });
    const retries = new Counter({
      name: "ferry_task_retries_total",
      help: "Failed task attempts that will be tried again after a backoff, per kind",
      labelNames: ["kind"],
      registers,
    });
    const parked = new Counter({
      name: "ferry_task_parks_total",
      help: "Tasks put back to wait for their device, without spending an attempt, per kind",
      labelNames: ["kind"],
      registers,
    });
    const dead = new Counter({
      name: "ferry_tasks_dead_total",
      help: "Tasks given up after their last attempt (see ferry tasks), per kind",
      labelNames: ["kind"],
      registers,
    });

    const bus = app.bus;
    this.#off.push(
      bus.on("job.state", ({ payload }) => {
        jobs.inc({ state: payload.to });
        if (payload.to === "printed" || payload.to === "failed" || payload.to === "cancelled")
          void this.#observePrint(payload.id, payload.to, printTime);
      }),
      bus.on("task.done", ({ payload }) => {
        done.inc({ kind: payload.kind });
        const device = deviceOf(payload.target);
        if (device !== undefined && isTransfer(payload.kind) && payload.bytes > 0)
          bytes.inc({ device }, payload.bytes);
      }),
      bus.on("task.failed", ({ payload }) => {
        const counter = payload.outcome === "retry" ? retries : payload.outcome === "dead" ? dead : parked;
        counter.inc({ kind: payload.kind });
      }),
    );
  }

  /** Where the number of event-stream clients comes from (the events route's hub). */
  sseClients(count: () => number): void {
    this.#sseClients = count;
  }

  /** The text Prometheus reads, and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  close(): void {
    for (const off of this.#off.splice(0)) off();
    this.registry.clear();
  }

  #printerViews(): Promise<PrinterView[]> {
    const now = Date.now();
    if (!this.#printers || now - this.#printers.at > PRINTERS_FRESH_MS)
      this.#printers = { at: now, views: this.#app.farm.printers() };
    return this.#printers.views;
  }

  /** The print's time from the store (it survives restarts; an event alone would not say when it began). */
  async #observePrint(id: string, outcome: string, histogram: Histogram<"outcome">): Promise<void> {
    try {
      const row = await this.#app.stored.store.db
        .selectFrom("jobs")
        .select(["started_at", "finished_at", "updated_at"])
        .where("id", "=", id)
        .executeTakeFirst();
      if (!row || row.started_at === null) return;
      const end = row.finished_at ?? row.updated_at;
      histogram.observe({ outcome }, Math.max(0, (end - row.started_at) / 1000));
    } catch (error) {
      this.#app.logger.debug({ err: (error as Error).message, job: id }, "metrics: no print time");
    }
  }
}
