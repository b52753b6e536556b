/**
 * The durable engine behind `ferry serve`: every planned action is a task in the store; workers
 * claim tasks and carry them out with heartbeats and checkpoints; triggers (watch, poll, schedule,
 * periodic rescan, a device coming back) plan again; the connection checker pauses the work of
 * devices that are away. A crash at any moment loses nothing: unfinished tasks return to the queue
 * when their lease expires, and every handler checks what is already done before acting.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Endpoint, FerryConfig, SyncConfig } from "../../config/index.ts";
import { FerryError, toFerryError } from "../../core/errors.ts";
import type { EventBus } from "../../core/events.ts";
import type { Logger } from "../../core/logger.ts";
import type { Devices } from "../../devices/devices.ts";
import type { StorageAdapter } from "../../storage/adapter.ts";
import { localAdapter } from "../../storage/local/local.ts";
import type { DeliveryRecords, DeliveryRecordsOpener } from "../../store/deliveries.ts";
import { pathKey } from "../../core/paths.ts";
import { LeaseLostError, type Task, type TaskQueue } from "../../tasks/queue.ts";
import { ConnectionChecker, type DeviceStateStore } from "./checker.ts";
import { deviceOf, type EngineContext } from "./context.ts";
import type { EngineEvents } from "./events.ts";
import { describeTask, handleTask, Park } from "./handlers.ts";
import { deviceQueues, targetQueue, type TransferCheckpoint } from "./payloads.ts";
import { planSync } from "./planner.ts";
import { startTriggers } from "./triggers.ts";

export interface EngineOptions {
  config: FerryConfig;
  devices: Devices;
  queue: TaskQueue;
  deliveries: DeliveryRecordsOpener;
  deviceStates: DeviceStateStore;
  bus: EventBus<EngineEvents>;
  logger: Logger;
  /**
   * This node's name, stable across restarts (host and data folder): worker ids are
   * `<workerId>/<n>`, and on start the tasks a previous run of this node held are taken back.
   */
  workerId: string;
  clock?: () => number;
  workers?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  probeMs?: number;
  /** Only these syncs (default: all). */
  syncs?: readonly string[];
}

/** At most this many transfer slots per target (the rest waits in the queue). */
const MAX_SLOTS = 8;

type Resolved = EngineOptions &
  Required<Pick<EngineOptions, "clock" | "workers" | "leaseMs" | "heartbeatMs" | "probeMs">>;

export class Engine {
  readonly #o: Resolved;
  readonly #syncs: SyncConfig[];
  readonly #ctx: EngineContext;
  readonly #checker: ConnectionChecker;
  readonly #adapters = new Map<string, StorageAdapter>();
  readonly #records = new Map<string, Promise<DeliveryRecords>>();
  readonly #stop = new AbortController();
  #wake: (() => void) | undefined;
  #loops: Promise<void>[] = [];
  #released = 0;

  constructor(options: EngineOptions) {
    this.#o = {
      ...options,
      clock: options.clock ?? Date.now,
      workers: options.workers ?? 0,
      leaseMs: options.leaseMs ?? 30_000,
      heartbeatMs: options.heartbeatMs ?? 2_000,
      probeMs: options.probeMs ?? 5_000,
    };
    const wanted = options.syncs;
    this.#syncs = [...options.config.syncs.values()].filter((s) => !wanted || wanted.includes(s.name));
    this.#ctx = this.#context();
    const probes = new Map<
      string,
      { name: string; storage: StorageAdapter; printer?: ReturnType<Devices["printer"]> & object }
    >();
    for (const sync of this.#syncs) {
      for (const endpoint of [sync.source, ...sync.targets]) {
        const name = deviceOf(endpoint);
        if (probes.has(name)) continue;
        const printer = endpoint.type === "device" ? options.devices.printer(endpoint.device) : undefined;
        const storage =
          endpoint.type === "device" ? options.devices.storage(endpoint.device) : this.#ctx.adapter(endpoint);
        probes.set(name, { name, storage, ...(printer ? { printer } : {}) });
      }
    }
    this.#checker = new ConnectionChecker(
      [...probes.values()],
      options.deviceStates,
      options.logger,
      (device, state, detail, before) => {
        options.bus.emit("device.state", { device, state, detail });
        const wasAway = before === "offline" || before === "attention";
        if (wasAway && (state === "online" || state === "busy")) {
          // Back: plan again what concerns it (it may have missed changes), and wake the workers.
          for (const sync of this.#syncsOf(device)) this.scan(sync.name, `${device} is back`);
          this.#wake?.();
        }
      },
      options.clock,
    );
  }

  get context(): EngineContext {
    return this.#ctx;
  }

  #context(): EngineContext {
    const o = this.#o;
    const syncs = new Map(this.#syncs.map((s) => [s.name, s]));
    const ctx: EngineContext = {
      devices: o.devices,
      queue: o.queue,
      records: (sync, target) => {
        const key = `${sync}\u0000${target}`;
        let records = this.#records.get(key);
        if (!records) {
          records = o.deliveries(sync, target);
          this.#records.set(key, records);
          // A failed open is not cached: the next task asks again.
          records.catch(() => this.#records.delete(key));
        }
        return records;
      },
      recordKey: (endpoint, path) => pathKey(path, ctx.adapter(endpoint).capabilities.caseInsensitive),
      bus: o.bus,
      logger: o.logger,
      clock: o.clock,
      sync: (name) => {
        const sync = syncs.get(name);
        if (!sync)
          throw new FerryError("NOT_FOUND", `sync "${name}" is not in ${o.config.file}`, {
            retryable: false,
          });
        return sync;
      },
      target: (sync, label) => {
        const endpoint = sync.targets.find((t) => t.label === label);
        if (!endpoint)
          throw new FerryError("NOT_FOUND", `sync "${sync.name}" has no target "${label}" any more`, {
            retryable: false,
          });
        return endpoint;
      },
      adapter: (endpoint) => {
        const key = `${endpoint.type}:${endpoint.label}`;
        let adapter = this.#adapters.get(key);
        if (!adapter) this.#adapters.set(key, (adapter = o.devices.endpoint(endpoint)));
        return adapter;
      },
      stagingRoot: (sync) => join(o.config.dataDir, "staging", encodeURIComponent(sync.name)),
      staging: (sync) => {
        const key = `staging:${sync.name}`;
        let adapter = this.#adapters.get(key);
        if (!adapter) {
          adapter = localAdapter.create(
            { path: ctx.stagingRoot(sync) },
            { name: `${sync.name} staging`, logger: o.logger, baseDir: o.config.baseDir },
          );
          this.#adapters.set(key, adapter);
        }
        return adapter;
      },
      deviceOf,
      queueFor: (endpoint: Endpoint, path: string) =>
        targetQueue(deviceOf(endpoint), this.#slots(endpoint), path),
    };
    return ctx;
  }

  #slots(endpoint: Endpoint): number {
    return Math.max(1, Math.min(MAX_SLOTS, this.#ctx.adapter(endpoint).capabilities.maxConcurrency));
  }

  #syncsOf(device: string): SyncConfig[] {
    return this.#syncs.filter((s) => [s.source, ...s.targets].some((e) => deviceOf(e) === device));
  }

  /** Queues of devices that are away: their tasks wait without being claimed. */
  #pausedQueues(): string[] {
    const away = new Set(this.#checker.away());
    const queues: string[] = [];
    for (const sync of this.#syncs) {
      for (const endpoint of [sync.source, ...sync.targets]) {
        if (away.has(deviceOf(endpoint)))
          queues.push(...deviceQueues(deviceOf(endpoint), this.#slots(endpoint)));
      }
    }
    return queues;
  }

  /** Plans a sync now and queues what it finds; never throws (failures are events). */
  scan(name: string, reason: string): void {
    const sync = this.#syncs.find((s) => s.name === name);
    if (!sync || this.#stop.signal.aborted) return;
    void planSync(sync, this.#ctx, new Set(this.#checker.away()), this.#stop.signal).then(
      ({ enqueued, targets }) => {
        this.#o.bus.emit("scan.done", { sync: name, reason, enqueued, targets });
        if (enqueued > 0) this.#wake?.();
      },
      (error: unknown) => {
        if (this.#stop.signal.aborted) return;
        this.#o.bus.emit("scan.failed", { sync: name, reason, error: toFerryError(error).message });
      },
    );
  }

  /** Wakes idle workers (new tasks were queued). */
  notify(): void {
    this.#wake?.();
  }

  async start(): Promise<void> {
    const signal = this.#stop.signal;
    await this.#recover();
    await this.#checker.probeAll(signal);
    const workers = this.#o.workers > 0 ? this.#o.workers : this.#defaultWorkers();
    this.#loops.push(this.#every(this.#o.probeMs, () => this.#checker.probeAll(signal)));
    this.#loops.push(
      this.#every(Math.max(1000, this.#o.leaseMs / 3), async () => {
        if ((await this.#o.queue.expireLeases()) > 0) this.#wake?.();
      }),
    );
    for (let i = 0; i < workers; i++) this.#loops.push(this.#work(`${this.#o.workerId}/${i}`));
    this.#loops.push(startTriggers(this.#syncs, this, this.#o.logger, signal));
    this.#o.bus.emit("engine.started", {
      syncs: this.#syncs.map((s) => s.name),
      devices: [...new Set(this.#syncs.flatMap((s) => [s.source, ...s.targets].map(deviceOf)))],
    });
    for (const sync of this.#syncs) this.scan(sync.name, "start");
  }

  /**
   * Tasks this node held when it last died (kill -9, power cut) return to the queue at once
   * instead of waiting for their leases to expire; other nodes' tasks are left to their leases.
   */
  async #recover(): Promise<void> {
    const mine = `${this.#o.workerId}/`;
    for (const task of await this.#o.queue.list({ status: "running", limit: 10_000 })) {
      if (task.lockedBy?.startsWith(mine)) {
        await this.#o.queue
          .release(task.id, task.lockedBy, task.checkpoint ?? undefined)
          .catch(() => undefined);
      }
    }
  }

  /** Stops claiming, aborts transfers and gives their tasks back with their checkpoints. */
  async stop(): Promise<void> {
    this.#stop.abort(new FerryError("ABORTED", "Ferry is stopping"));
    this.#wake?.();
    await Promise.allSettled(this.#loops);
    this.#o.bus.emit("engine.stopped", { released: this.#released });
  }

  #defaultWorkers(): number {
    const slots = new Set<string>();
    for (const sync of this.#syncs)
      for (const t of sync.targets) for (let i = 0; i < this.#slots(t); i++) slots.add(`${deviceOf(t)}#${i}`);
    return Math.max(2, Math.min(32, slots.size + 1));
  }

  async #every(ms: number, fn: () => Promise<unknown>): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await sleep(ms, undefined, { signal });
        await fn();
      } catch (error) {
        // The signal may have fired while `fn` ran.
        if (this.#stop.signal.aborted) return;
        this.#o.logger.warn({ err: toFerryError(error).message }, "periodic check failed");
      }
    }
  }

  async #idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const previous = this.#wake;
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        previous?.();
        done();
      };
    });
  }

  async #work(worker: string): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let task: Task | undefined;
      try {
        task = await this.#o.queue.claim(worker, {
          leaseMs: this.#o.leaseMs,
          excludeQueues: this.#pausedQueues(),
        });
      } catch (error) {
        this.#o.logger.warn({ err: toFerryError(error).message }, "claiming a task failed");
      }
      if (!task) {
        await this.#idle(500);
        continue;
      }
      await this.#run(task, worker);
    }
  }

  async #run(task: Task, worker: string): Promise<void> {
    const { queue, bus, clock, leaseMs, heartbeatMs } = this.#o;
    const ref = { id: task.id, kind: task.kind, ...describeTask(task) };
    const abort = new AbortController();
    const onStop = () => abort.abort(this.#stop.signal.reason);
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    let progress = task.progress ?? 0;
    let checkpoint = (task.checkpoint as TransferCheckpoint | null) ?? null;
    let size = 0;
    let lastEmit = 0;
    const beat = setInterval(() => {
      queue
        .heartbeat(task.id, worker, { leaseMs, progress, ...(checkpoint ? { checkpoint } : {}) })
        .catch((error: unknown) => {
          if (error instanceof LeaseLostError) abort.abort(error);
        });
    }, heartbeatMs);
    const started = clock();
    bus.emit("task.started", ref);
    try {
      const payloadSize = (task.payload as { size?: number }).size;
      size = typeof payloadSize === "number" ? payloadSize : 0;
      const outcome = await handleTask(task, this.#ctx, {
        signal: abort.signal,
        checkpoint,
        save: async (cp) => {
          checkpoint = cp;
          await queue.heartbeat(task.id, worker, { leaseMs, progress, checkpoint });
        },
        progress: (bytes, cp) => {
          progress = bytes;
          if (cp) checkpoint = cp;
          const now = clock();
          if (now - lastEmit >= 200) {
            lastEmit = now;
            bus.emit("task.progress", { ...ref, bytes, size });
          }
        },
      });
      await queue.complete(task.id, worker);
      bus.emit("task.done", {
        ...ref,
        bytes: outcome.bytes,
        ms: clock() - started,
        ...(outcome.skipped ? { skipped: outcome.skipped } : {}),
      });
    } catch (error) {
      await this.#failed(task, worker, error, checkpoint, ref);
    } finally {
      clearInterval(beat);
      this.#stop.signal.removeEventListener("abort", onStop);
    }
  }

  async #failed(
    task: Task,
    worker: string,
    error: unknown,
    checkpoint: TransferCheckpoint | null,
    ref: EngineEvents["task.started"],
  ): Promise<void> {
    const { queue, bus, clock } = this.#o;
    const cp = checkpoint ? { checkpoint } : {};
    try {
      if (this.#stop.signal.aborted) {
        await queue.release(task.id, worker, checkpoint ?? undefined);
        this.#released++;
        return;
      }
      if (error instanceof LeaseLostError) return;
      if (error instanceof Park) {
        await queue.fail(task.id, worker, {
          message: error.message,
          retryable: true,
          park: { runAt: clock() + error.afterMs },
          ...cp,
        });
        bus.emit("task.failed", { ...ref, code: "BUSY", error: error.message, outcome: "parked" });
        return;
      }
      const failure = toFerryError(error);
      if (failure.code === "UNAVAILABLE" || failure.code === "AUTH") {
        // The device is away (or refuses us): wait for it instead of spending attempts.
        // Ask the devices involved now, so the queue pauses at once if one is really gone.
        const devices = this.#devicesOfTask(task);
        await Promise.all(
          devices.map((device) =>
            failure.code === "AUTH" && device === devices.at(-1)
              ? this.#checker.refused(device, failure.message)
              : this.#checker.probe(device),
          ),
        );
        await queue.fail(task.id, worker, {
          message: failure.message,
          retryable: true,
          park: { runAt: clock() + 5_000 },
          ...cp,
        });
        bus.emit("task.failed", { ...ref, code: failure.code, error: failure.message, outcome: "parked" });
        return;
      }
      // Ferry aborts only to stop (handled above) or on a lost lease (fail() refuses it): an ABORTED
      // here came from below (a library's own timeout or abort) and is worth another attempt.
      const retryable = failure.retryable || failure.code === "ABORTED";
      const dead = !retryable || task.attempts + 1 >= task.maxAttempts;
      await queue.fail(task.id, worker, { message: failure.message, retryable, ...cp });
      bus.emit("task.failed", {
        ...ref,
        code: failure.code,
        error: failure.message,
        outcome: dead ? "dead" : "retry",
      });
    } catch (storeError) {
      if (storeError instanceof LeaseLostError) return;
      this.#o.logger.error(
        { err: toFerryError(storeError).message, task: task.id },
        "could not record a task's failure",
      );
    }
  }

  #devicesOfTask(task: Task): string[] {
    const ref = describeTask(task);
    try {
      const sync = this.#ctx.sync(ref.sync);
      const source = deviceOf(sync.source);
      return ref.target === "source" ? [source] : [source, deviceOf(this.#ctx.target(sync, ref.target))];
    } catch {
      return [];
    }
  }
}
