/**
 * The sync engine behind `ferry serve`: it registers the sync handlers on the task runner, plans
 * each sync when a trigger fires (start, watch, poll, schedule, periodic rescan, a device coming
 * back), and has the connection checker probe every device its syncs use, so the work of a device
 * that is away pauses and resumes by itself. A crash at any moment loses nothing: unfinished tasks
 * return to the queue, and every handler checks what is already done before acting.
 */
import type { FerryConfig, SyncConfig } from "../../config/index.ts";
import { systemClock, type Clock } from "../../core/clock.ts";
import { FerryError, toFerryError } from "../../core/errors.ts";
import type { Bus } from "../../core/events.ts";
import type { Logger } from "../../core/logger.ts";
import { deviceOf, type Devices } from "../../devices/devices.ts";
import type { DeliveryRecordsOpener } from "../../store/deliveries.ts";
import type { PausedSyncs } from "../../store/paused-syncs.ts";
import type { TaskQueue } from "../../tasks/queue.ts";
import type { Held, TaskRunner } from "../../tasks/runner.ts";
import type { Task } from "../../tasks/queue.ts";
import type { TaskLabel } from "../../tasks/events.ts";
import type { EngineEvents } from "../events.ts";
import { engineContext, type EngineContext } from "./context.ts";
import { registerSyncHandlers } from "./handlers.ts";
import { syncScope } from "./payloads.ts";
import { planSync } from "./planner.ts";
import { SyncStatus, type SyncView } from "./status.ts";
import { startTriggers } from "./triggers.ts";

export interface EngineOptions {
  config: FerryConfig;
  devices: Devices;
  queue: TaskQueue;
  runner: TaskRunner;
  deliveries: DeliveryRecordsOpener;
  bus: Bus<EngineEvents>;
  logger: Logger;
  clock?: Clock;
  /** How often every device is probed. */
  probeMs?: number;
  /** Only these syncs (default: all). */
  syncs?: readonly string[];
  /** Where paused syncs are kept (`ferry serve`); without it nothing can be paused. */
  pausedSyncs?: PausedSyncs;
}

export class Engine {
  readonly #o: EngineOptions & { clock: Clock; probeMs: number };
  readonly #syncs: SyncConfig[];
  readonly #ctx: EngineContext;
  readonly #stop = new AbortController();
  #loops: Promise<void>[] = [];
  #off: (() => void) | undefined;
  readonly #status: SyncStatus;
  /** Paused syncs, as in the store. */
  readonly #paused = new Map<string, { at: number; by: string | null }>();

  constructor(options: EngineOptions) {
    this.#o = { clock: systemClock, probeMs: 5_000, ...options };
    const wanted = options.syncs;
    this.#syncs = [...options.config.syncs.values()].filter((s) => !wanted || wanted.includes(s.name));
    this.#ctx = engineContext({ ...options, syncs: this.#syncs, clock: () => this.#o.clock.now() });
    registerSyncHandlers(options.runner, this.#ctx);
    this.#status = new SyncStatus(options.bus);
    for (const sync of this.#syncs)
      for (const endpoint of [sync.source, ...sync.targets]) options.devices.track(endpoint);
  }

  get context(): EngineContext {
    return this.#ctx;
  }

  /** The devices of the engine's syncs. */
  devices(): string[] {
    return [...new Set(this.#syncs.flatMap((s) => [s.source, ...s.targets].map(deviceOf)))];
  }

  #syncsOf(device: string): SyncConfig[] {
    return this.#syncs.filter((s) => [s.source, ...s.targets].some((e) => deviceOf(e) === device));
  }

  /**
   * The runner's `held` hook: a task met a device that is away or refuses us. Ask the devices
   * involved now, so their queues pause at once if one is really gone.
   */
  async held(task: Task, label: TaskLabel, held: Held): Promise<void> {
    if (held.why !== "away" || label.sync === undefined) return;
    const checker = this.#o.devices.checker;
    try {
      const sync = this.#ctx.sync(label.sync);
      const devices = [deviceOf(sync.source)];
      if (label.target !== undefined && label.target !== "source")
        devices.push(deviceOf(this.#ctx.target(sync, label.target)));
      await Promise.all(
        devices.map((device) =>
          held.code === "AUTH" && device === devices.at(-1)
            ? checker.refused(device, held.message)
            : checker.probe(device),
        ),
      );
    } catch (error) {
      this.#o.logger.warn(
        { task: task.id, err: toFerryError(error).message },
        "could not probe a task's devices",
      );
    }
  }

  /** The syncs this engine serves, in ferry.yaml's order. */
  syncs(): readonly SyncConfig[] {
    return this.#syncs;
  }

  #sync(name: string): SyncConfig {
    const sync = this.#syncs.find((s) => s.name === name);
    if (!sync) throw new FerryError("NOT_FOUND", `there is no sync "${name}"`, { subject: name });
    return sync;
  }

  /** What is known of a sync now (NOT_FOUND for a name it does not serve). */
  view(name: string): SyncView {
    return this.#status.view(this.#sync(name), this.#paused.get(name) ?? null, this.#o.clock.now());
  }

  /** A pass now, as `ferry sync` would make: CONFLICT while the sync is paused. */
  run(name: string): void {
    this.#sync(name);
    if (this.#paused.has(name))
      throw new FerryError("CONFLICT", `sync ${name} is paused; resume it first`, { subject: name });
    this.scan(name, "manual");
  }

  /**
   * Pauses a sync: it plans nothing, and its queued tasks wait (a transfer already running
   * finishes). Kept across restarts.
   */
  async pause(name: string, by?: string): Promise<SyncView> {
    this.#sync(name);
    const store = this.#pausedStore();
    const paused = await store.pause(name, by);
    if (!this.#paused.has(name)) {
      this.#paused.set(name, { at: paused.pausedAt, by: paused.pausedBy });
      this.#o.bus.emit("sync.paused", { sync: name, by: paused.pausedBy });
    }
    return this.view(name);
  }

  /** Resumes a paused sync and plans it at once (it may have missed changes). */
  async resume(name: string): Promise<SyncView> {
    this.#sync(name);
    await this.#pausedStore().resume(name);
    if (this.#paused.delete(name)) {
      this.#o.bus.emit("sync.resumed", { sync: name });
      this.scan(name, "resumed");
      this.#o.runner.notify();
    }
    return this.view(name);
  }

  /** Scopes of the tasks the runner leaves alone (paused syncs). */
  pausedScopes(): string[] {
    return [...this.#paused.keys()].map(syncScope);
  }

  #pausedStore(): PausedSyncs {
    if (!this.#o.pausedSyncs) throw new FerryError("UNSUPPORTED", "a one-shot run cannot pause a sync");
    return this.#o.pausedSyncs;
  }

  /** Plans a sync now and queues what it finds; never throws (failures are events). */
  scan(name: string, reason: string): void {
    const sync = this.#syncs.find((s) => s.name === name);
    const signal = this.#stop.signal;
    if (!sync || signal.aborted || this.#paused.has(name)) return;
    const away = new Set(this.#o.devices.checker.away());
    void planSync(sync, this.#ctx, { reason, signal, away }).then(
      ({ enqueued }) => {
        if (enqueued > 0) this.#o.runner.notify();
      },
      (error: unknown) => {
        if (signal.aborted) return;
        this.#o.bus.emit("sync.scan.failed", { sync: name, reason, error: toFerryError(error).message });
      },
    );
  }

  /** Wakes idle workers (new tasks were queued). */
  notify(): void {
    this.#o.runner.notify();
  }

  /** Probes every device, then starts the triggers and plans every sync once. */
  async start(): Promise<void> {
    const signal = this.#stop.signal;
    const { devices, bus } = this.#o;
    for (const p of (await this.#o.pausedSyncs?.all()) ?? [])
      this.#paused.set(p.name, { at: p.pausedAt, by: p.pausedBy });
    this.#off = bus.on("device.state", ({ payload: { device, state, before } }) => {
      const wasAway = before === "offline" || before === "attention";
      if (wasAway && (state === "online" || state === "busy")) {
        // Back: plan again what concerns it (it may have missed changes), and wake the workers.
        for (const sync of this.#syncsOf(device)) this.scan(sync.name, `${device} is back`);
        this.#o.runner.notify();
      }
    });
    await devices.checker.probeAll(signal);
    this.#loops.push(this.#probeLoop());
    this.#loops.push(startTriggers(this.#syncs, this, this.#o.logger, signal, this.#o.clock));
    bus.emit("engine.started", { syncs: this.#syncs.map((s) => s.name), devices: this.devices() });
    for (const sync of this.#syncs) this.scan(sync.name, "start");
  }

  async #probeLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await this.#o.clock.sleep(this.#o.probeMs, signal);
        await this.#o.devices.checker.probeAll(signal);
      } catch (error) {
        // The signal may have fired while probing.
        if (this.#stop.signal.aborted) return;
        this.#o.logger.warn({ err: toFerryError(error).message }, "probing devices failed");
      }
    }
  }

  /** Stops the triggers and probes (the runner is stopped by its owner). */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#off?.();
    this.#status.close();
    await Promise.allSettled(this.#loops);
    this.#loops = [];
  }
}

/**
 * One worker per queue the syncs' targets can use at once, and one for work on sources when a sync
 * has any (staging, the last step of a move). No more: a worker with no queue free to take is woken
 * by every task settled and claims in vain (with many small files, about one failed claim a file).
 */
export function workersFor(syncs: readonly SyncConfig[], devices: Devices): number {
  const slots = new Map<string, number>();
  for (const sync of syncs)
    for (const target of sync.targets) {
      const device = deviceOf(target);
      slots.set(device, Math.max(slots.get(device) ?? 0, devices.slots(target)));
    }
  const total = [...slots.values()].reduce((a, b) => a + b, 0);
  const sourceWork = syncs.some((s) => s.mode === "move" || s.staging);
  return Math.max(1, Math.min(32, total + (sourceWork ? 1 : 0)));
}
