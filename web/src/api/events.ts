/**
 * Live updates: one EventSource on GET /api/v1/events for the whole page (no polling). Each event
 * updates TanStack Query's cache in place (a printer's state, temperatures, a job's progress, a
 * transfer's bytes), batched: at most five flushes a second, each in an animation frame, so 200
 * printers updating every second cost a few renders a second, not hundreds; events that change lists (a job's new state, a task done) mark those lists stale, and
 * the queries on screen fetch them again once. After a reconnect everything is fetched again:
 * live-only events (progress, temperatures) are not replayed.
 */
import type { QueryClient } from "@tanstack/react-query";
import type { Job, Printer, Transfer } from "./client.ts";
import type { Envelope, StreamType } from "./events-types.ts";

/** The types the dashboard follows (docs/events.md). */
const TYPES: readonly StreamType[] = [
  "printer.state",
  "printer.error",
  "printer.temperatures",
  "printer.bed",
  "printer.maintenance",
  "printer.waiting_bed_clear",
  "job.state",
  "job.progress",
  "job.waiting",
  "task.started",
  "task.progress",
  "task.done",
  "task.failed",
  "device.state",
  "device.added",
  "device.removed",
  "sync.planned",
  "sync.paused",
  "sync.resumed",
  "sync.scan.failed",
  "farm.started",
];

/** What a list refetch is for: these lists go stale on these events. */
const STALE: Partial<Record<StreamType, readonly string[]>> = {
  "printer.error": ["printers"],
  "printer.bed": ["printers"],
  "printer.maintenance": ["printers"],
  "printer.waiting_bed_clear": ["printers"],
  "job.state": ["jobs", "printers", "job-history"],
  "job.waiting": ["jobs"],
  "task.started": ["transfers", "tasks", "syncs"],
  "task.done": ["transfers", "tasks", "syncs"],
  "task.failed": ["transfers", "tasks", "syncs"],
  "device.state": ["devices"],
  "device.added": ["devices", "printers"],
  "device.removed": ["devices", "printers"],
  "sync.planned": ["syncs", "tasks"],
  "sync.paused": ["syncs"],
  "sync.resumed": ["syncs"],
  "sync.scan.failed": ["syncs"],
  "farm.started": ["printers"],
};

type Listener = (event: Envelope) => void;

/** Live changes reach the cache at most this often. */
const FLUSH_EVERY_MS = 200;

export type StreamStatus = "connecting" | "live" | "reconnecting";

export class LiveEvents {
  readonly #client: QueryClient;
  #source: EventSource | undefined;
  readonly #listeners = new Set<Listener>();
  readonly #statusListeners = new Set<(status: StreamStatus) => void>();
  status: StreamStatus = "connecting";
  /** Printer changes waiting for the next frame. */
  #printerPatches = new Map<string, ((printer: Printer) => Printer)[]>();
  #jobPatches = new Map<string, Partial<Job>>();
  #transferBytes = new Map<string, { bytes: number; at: number }>();
  #stale = new Set<string>();
  #frame: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastFlush = 0;
  #wasLive = false;

  constructor(client: QueryClient) {
    this.#client = client;
  }

  open(): void {
    if (this.#source) return;
    const source = new EventSource(`/api/v1/events?type=${TYPES.join(",")}`);
    this.#source = source;
    const onEvent = (message: MessageEvent<string>) => this.#receive(JSON.parse(message.data) as Envelope);
    for (const type of TYPES) source.addEventListener(type, onEvent);
    source.addEventListener("ferry.history.gap", () => this.#refetchAll());
    source.onopen = () => {
      // Back after a break: what happened meanwhile is fetched again.
      if (this.#wasLive) this.#refetchAll();
      this.#wasLive = true;
      this.#setStatus("live");
    };
    source.onerror = () =>
      this.#setStatus(source.readyState === EventSource.CLOSED ? "connecting" : "reconnecting");
  }

  close(): void {
    this.#source?.close();
    this.#source = undefined;
    this.#wasLive = false;
    if (this.#frame !== undefined) cancelAnimationFrame(this.#frame);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#frame = undefined;
    this.#timer = undefined;
  }

  /** Every event, as it comes (for the printer page's chart and log). */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onStatus(listener: (status: StreamStatus) => void): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  #setStatus(status: StreamStatus): void {
    this.status = status;
    for (const listener of this.#statusListeners) listener(status);
  }

  #refetchAll(): void {
    void this.#client.invalidateQueries();
  }

  #receive(event: Envelope): void {
    for (const listener of this.#listeners) listener(event);
    switch (event.type) {
      case "printer.state": {
        const e = event as Envelope<"printer.state">;
        this.#patchPrinter(e.payload.printer, (p) => ({
          ...p,
          connection: e.payload.connection,
          activity: e.payload.activity,
          rawState: e.payload.rawState,
          offlineReason: e.payload.connection === "online" ? null : p.offlineReason,
          observedAt: new Date(e.at).toISOString(),
        }));
        break;
      }
      case "printer.error": {
        const e = event as Envelope<"printer.error">;
        if (e.payload.problem === "offline" || e.payload.problem === "auth_failed")
          this.#patchPrinter(e.payload.printer, (p) => ({ ...p, offlineReason: e.payload.message }));
        break;
      }
      case "printer.temperatures": {
        const e = event as Envelope<"printer.temperatures">;
        this.#patchPrinter(e.payload.printer, (p) => ({ ...p, temperatures: e.payload.temperatures }));
        break;
      }
      case "job.progress": {
        const e = event as Envelope<"job.progress">;
        const { id, progress, remainingS } = e.payload;
        this.#patchPrinter(e.payload.printer, (p) =>
          p.job?.id === id ? { ...p, job: { ...p.job, progress, remainingS } } : p,
        );
        this.#jobPatches.set(id, { progress, remainingS });
        break;
      }
      case "job.state": {
        // A new job may print a file uploaded elsewhere (a slicer): its thumbnail is in the library.
        if ((event as Envelope<"job.state">).payload.from === null) this.#stale.add("files");
        break;
      }
      case "task.progress": {
        const e = event as Envelope<"task.progress">;
        this.#transferBytes.set(e.payload.id, { bytes: e.payload.bytes, at: e.at });
        break;
      }
      default:
        break;
    }
    for (const key of STALE[event.type] ?? []) this.#stale.add(key);
    this.#schedule();
  }

  #patchPrinter(name: string, patch: (printer: Printer) => Printer): void {
    const list = this.#printerPatches.get(name);
    if (list) list.push(patch);
    else this.#printerPatches.set(name, [patch]);
  }

  #schedule(): void {
    if (this.#frame !== undefined || this.#timer !== undefined) return;
    const wait = Math.max(0, FLUSH_EVERY_MS - (performance.now() - this.#lastFlush));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#frame = requestAnimationFrame(() => {
        this.#frame = undefined;
        this.#lastFlush = performance.now();
        this.#flush();
      });
    }, wait);
  }

  #flush(): void {
    const client = this.#client;
    if (this.#printerPatches.size > 0) {
      const patches = this.#printerPatches;
      this.#printerPatches = new Map();
      client.setQueryData<Printer[]>(["printers"], (printers) =>
        printers?.map((printer) => {
          const list = patches.get(printer.name);
          return list ? list.reduce((p, patch) => patch(p), printer) : printer;
        }),
      );
    }
    if (this.#jobPatches.size > 0) {
      const patches = this.#jobPatches;
      this.#jobPatches = new Map();
      client.setQueriesData<Job[]>({ queryKey: ["jobs"] }, (jobs) =>
        jobs?.map((job) => {
          const patch = patches.get(job.id);
          return patch ? { ...job, ...patch } : job;
        }),
      );
    }
    if (this.#transferBytes.size > 0) {
      const seen = this.#transferBytes;
      this.#transferBytes = new Map();
      client.setQueryData<Transfer[]>(["transfers"], (transfers) =>
        transfers?.map((t) => {
          const now = seen.get(t.id);
          if (!now || now.bytes <= t.bytes) return t;
          return withRate(t, now.bytes, now.at);
        }),
      );
    }
    if (this.#stale.size > 0) {
      const keys = [...this.#stale];
      this.#stale.clear();
      for (const key of keys) void client.invalidateQueries({ queryKey: [key] });
    }
  }
}

/** Last report's time per transfer, for its rate (kept beside the cache, which holds the API's shape). */
const reportedAt = new Map<string, { bytes: number; at: number }>();

/** A transfer with new bytes, its rate smoothed over the reports and the time left from it. */
function withRate(t: Transfer, bytes: number, at: number): Transfer {
  const last = reportedAt.get(t.id) ?? { bytes: t.bytes, at: Date.parse(t.startedAt) };
  reportedAt.set(t.id, { bytes, at });
  const seconds = (at - last.at) / 1000;
  const instant = seconds > 0 ? (bytes - last.bytes) / seconds : null;
  const rate =
    instant === null
      ? t.bytesPerSecond
      : t.bytesPerSecond === null
        ? instant
        : 0.7 * t.bytesPerSecond + 0.3 * instant;
  const secondsLeft =
    t.size !== null && rate !== null && rate > 0 ? Math.max(0, (t.size - bytes) / rate) : null;
  return { ...t, bytes, bytesPerSecond: rate, secondsLeft };
}
