/** Filters hold on every path into the queue: scan, watcher, staging. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseConfig } from "../../config/index.ts";
import { EventBus } from "../../core/events.ts";
import { silentLogger } from "../../core/logger.ts";
import { Devices, deviceKinds } from "../../devices/devices.ts";
import { storeDeliveries } from "../../store/deliveries.ts";
import { openMemoryStore, type Store } from "../../store/store.ts";
import { StoreTaskQueue } from "../../tasks/store-queue.ts";
import type { EngineEvents } from "../events.ts";
import { engineContext, type EngineContext } from "./context.ts";
import { enqueueFileTask } from "./enqueue.ts";
import type { FilePayload } from "./payloads.ts";
import { enqueueChange } from "./triggers.ts";

describe("the door into the queue", () => {
  let dir: string;
  let store: Store;
  let ctx: EngineContext;
  let queue: StoreTaskQueue;
  const config = () =>
    parseConfig(
      'syncs:\n  g: { source: ./src, targets: [./dst], mode: mirror, include: ["**/*.gcode"] }\n',
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-enqueue-"));
    store = await openMemoryStore();
    queue = new StoreTaskQueue(store);
    const parsed = config();
    ctx = engineContext({
      config: parsed,
      syncs: [...parsed.syncs.values()],
      devices: new Devices(parsed, silentLogger),
      queue,
      deliveries: storeDeliveries(store),
      bus: new EventBus<EngineEvents>(),
      logger: silentLogger,
    });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const queued = async () =>
    (await queue.list({ status: "queued" })).map((t) => {
      const p = t.payload as FilePayload;
      return p.op === "move" ? `move ${p.from} ${p.to}` : `${p.op} ${p.path}`;
    });

  test("a file the sync does not select never becomes a task", async () => {
    const sync = ctx.sync("g");
    const target = sync.targets[0];
    assert.ok(target);
    const sent = await enqueueFileTask(ctx, target, {
      op: "upload",
      sync: "g",
      target: target.label,
      path: "notes4.txt",
      targetPath: "notes4.txt",
      size: 3,
    });
    assert.equal(sent, false);
    assert.deepEqual(await queued(), []);
  });

  test("a rename out of the selection is a deletion; nothing unselected is sent or renamed", async () => {
    const sync = ctx.sync("g");
    const count = await enqueueChange(
      sync,
      { type: "move", path: "notes4.txt", from: "sub/part.gcode" },
      ctx,
    );
    assert.equal(count, 1);
    assert.deepEqual(await queued(), ["delete sub/part.gcode"]);
  });
});
