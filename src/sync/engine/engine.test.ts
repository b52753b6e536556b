/** The serve engine in process: memory store, local folders, a fake clock that moves only when told. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../../config/index.ts";
import { FakeClock } from "../../core/clock.ts";
import { EventBus, type Envelope } from "../../core/events.ts";
import { silentLogger } from "../../core/logger.ts";
import { Devices, deviceKinds } from "../../devices/devices.ts";
import { storeDeliveries } from "../../store/deliveries.ts";
import { openMemoryStore, type Store } from "../../store/store.ts";
import { TaskRunner } from "../../tasks/runner.ts";
import { StoreTaskQueue } from "../../tasks/store-queue.ts";
import type { EngineEvents } from "../events.ts";
import { Engine } from "./engine.ts";

describe("the sync engine on a fake clock", () => {
  let dir: string;
  let store: Store;
  let clock: FakeClock;
  let bus: EventBus<EngineEvents>;
  let devices: Devices;
  let runner: TaskRunner;
  let engine: Engine;

  /** The next event of a type that matches, whenever the engine publishes it. */
  const next = <K extends keyof EngineEvents>(type: K, match: (e: EngineEvents[K]) => boolean) =>
    new Promise<EngineEvents[K]>((resolve) => {
      const off = bus.on(type, (e: Envelope<EngineEvents, K>) => {
        if (!match(e.payload)) return;
        off();
        resolve(e.payload);
      });
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-engine-"));
    await mkdir(join(dir, "src"));
    await writeFile(join(dir, "src", "a.gcode"), "first");
    const config = parseConfig(
      'syncs:\n  s: { source: ./src, targets: [./dst], mode: mirror, poll: 1m, include: ["*.gcode"] }\n',
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    store = await openMemoryStore();
    clock = new FakeClock();
    const queue = new StoreTaskQueue(store, { clock: () => clock.now() });
    bus = new EventBus<EngineEvents>({ clock: () => clock.now() });
    devices = new Devices(config, silentLogger, { bus, clock: () => clock.now() });
    runner = new TaskRunner({ queue, bus, logger: silentLogger, node: "test", clock, workers: 2 });
    engine = new Engine({
      config,
      devices,
      queue,
      runner,
      deliveries: storeDeliveries(store),
      bus,
      logger: silentLogger,
      clock,
    });
  });
  after(async () => {
    await engine.stop();
    await runner.stop();
    await devices.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("the start scan delivers what is there", async () => {
    const done = next("task.done", (e) => e.path === "a.gcode");
    await runner.start();
    await engine.start();
    assert.equal((await done).bytes, 5);
    assert.equal(await readFile(join(dir, "dst", "a.gcode"), "utf8"), "first");
  });

  test("poll plans again when the clock says so, not before; filters hold", async () => {
    await writeFile(join(dir, "src", "b.gcode"), "second");
    await writeFile(join(dir, "src", "notes.txt"), "not selected");
    const planned = next("sync.planned", (e) => e.reason === "poll");
    const done = next("task.done", (e) => e.path === "b.gcode");
    clock.advance(59_000);
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(readFile(join(dir, "dst", "b.gcode")), { code: "ENOENT" });
    clock.advance(1_000);
    const plan = await planned;
    assert.deepEqual(
      plan.actions.map((a) => `${a.type} ${a.path}`),
      ["upload b.gcode"],
    );
    await done;
    assert.equal(await readFile(join(dir, "dst", "b.gcode"), "utf8"), "second");
    await assert.rejects(readFile(join(dir, "dst", "notes.txt")), { code: "ENOENT" });
  });
});
