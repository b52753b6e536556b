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
import { PausedSyncs } from "../../store/paused-syncs.ts";
import { openMemoryStore, type Store } from "../../store/store.ts";
import { TaskRunner } from "../../tasks/runner.ts";
import { StoreTaskQueue } from "../../tasks/store-queue.ts";
import type { EngineEvents } from "../events.ts";
import { Engine, workersFor } from "./engine.ts";
import { FILE_TASK, fileKey, syncScope } from "./payloads.ts";

describe("the sync engine on a fake clock", () => {
  let dir: string;
  let store: Store;
  let clock: FakeClock;
  let bus: EventBus<EngineEvents>;
  let devices: Devices;
  let runner: TaskRunner;
  let engine: Engine;
  let queue: StoreTaskQueue;
  let pausedSyncs: PausedSyncs;

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
    bus = new EventBus<EngineEvents>({ clock: () => clock.now() });
    devices = new Devices(config, silentLogger, { bus, clock: () => clock.now() });
    queue = new StoreTaskQueue(store, { clock: () => clock.now() });
    pausedSyncs = new PausedSyncs(store, { clock: () => clock.now() });
    runner = new TaskRunner({
      queue,
      bus,
      logger: silentLogger,
      node: "test",
      clock,
      workers: 2,
      paused: () => ({ scopes: engine.pausedScopes() }),
    });
    engine = new Engine({
      config,
      devices,
      queue,
      runner,
      deliveries: storeDeliveries(store),
      pausedSyncs,
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

  test("a sync's view: its last pass and when the next poll comes", () => {
    const view = engine.view("s");
    assert.equal(view.lastPass?.reason, "poll");
    assert.ok(view.lastPass);
    assert.deepEqual(view.next, { kind: "poll", at: view.lastPass.at + 60_000 });
    assert.equal(view.paused, null);
    assert.throws(() => engine.view("nope"), { code: "NOT_FOUND" });
  });

  test("a paused sync's tasks wait while others run; a manual run is refused; resume plans at once", async () => {
    const paused = next("sync.paused", (e) => e.sync === "s");
    const view = await engine.pause("s", "ana");
    assert.deepEqual([view.paused?.by, view.next.at], ["ana", null]);
    assert.deepEqual(await paused, { sync: "s", by: "ana" });
    assert.deepEqual(
      (await pausedSyncs.all()).map((p) => [p.name, p.pausedBy]),
      [["s", "ana"]],
      "kept in the store for the next start",
    );
    assert.throws(() => engine.run("s"), { code: "CONFLICT" });

    // The sync's task outranks the other one: a runner that ignored the pause would take it first.
    await writeFile(join(dir, "src", "c.gcode"), "third");
    const waiting = await queue.enqueue({
      kind: FILE_TASK,
      key: fileKey("s", "./dst", "c.gcode"),
      queue: "to:./dst#0",
      scope: syncScope("s"),
      priority: 100,
      payload: { op: "upload", sync: "s", target: "./dst", path: "c.gcode", targetPath: "c.gcode", size: 5 },
    });
    runner.register<object, never>("other", {
      describe: () => ({ what: "other work" }),
      run: () => Promise.resolve({ bytes: 0 }),
    });
    const other = next("task.done", (e) => e.kind === "other");
    await queue.enqueue({ kind: "other", key: "other", queue: "elsewhere", payload: {} });
    engine.notify();
    await other;
    assert.equal((await queue.get(waiting.id))?.status, "queued");

    const resumed = next("sync.planned", (e) => e.reason === "resumed");
    const delivered = next("task.done", (e) => e.path === "c.gcode");
    assert.equal((await engine.resume("s")).paused, null);
    await resumed;
    await delivered;
    assert.equal(await readFile(join(dir, "dst", "c.gcode"), "utf8"), "third");
    assert.deepEqual(await pausedSyncs.all(), []);
  });
});

test("workers: one per target queue, and one more only for syncs that have work on their source", () => {
  const workers = (mode: string, staging = false) => {
    const config = parseConfig(
      `syncs:\n  s: { source: ./src, targets: [./a, ./b], mode: ${mode}, staging: ${staging} }\n`,
      join(tmpdir(), "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    return workersFor([...config.syncs.values()], new Devices(config, silentLogger));
  };
  // Two local folders: each takes 8 transfers at once.
  assert.equal(workers("copy"), 16);
  assert.equal(workers("mirror"), 16);
  assert.equal(workers("copy", true), 17);
  assert.equal(workers("move"), 17);
});
