/** Planning a target while deliveries to it go on (ferry serve plans and sends at the same time). */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import { parseConfig } from "../config/index.ts";
import { silentLogger } from "../core/logger.ts";
import { deviceKinds } from "../devices/devices.ts";
import type { Entry, StorageAdapter } from "../storage/adapter.ts";
import { dropMemoryVolume, memoryAdapter } from "../storage/memory/memory.ts";
import { deliveryRecord, storeDeliveries } from "../store/deliveries.ts";
import { openMemoryStore } from "../store/store.ts";
import { fileFilter } from "./filters.ts";
import { planTarget } from "./plan-target.ts";
import { scanSource, sourceHasher } from "./scan.ts";

const memory = (name: string) => memoryAdapter.create({}, { name, logger: silentLogger, baseDir: "/" });

test("a delivery recorded while the target is listed is not forgotten by that older listing", async () => {
  const names = [randomUUID(), randomUUID()];
  const [source, target] = names.map(memory) as [StorageAdapter, StorageAdapter];
  const store = await openMemoryStore();
  try {
    const data = Buffer.from("a flight log");
    const sent = await source.write("log.bin", Readable.from([data]), { size: data.length });
    const config = parseConfig(
      "syncs:\n  logs: { source: /src, targets: [/dst], mode: move, settle: 0s }\n",
      "/ferry.yaml",
      { deviceKinds, env: {} },
    );
    const sync = config.syncs.get("logs");
    assert.ok(sync);
    const records = await storeDeliveries(store)(sync.name, "/dst");
    const filter = fileFilter([], []);
    const scan = await scanSource(source, filter);

    // The listing is read first and handed over only after the file has been delivered and
    // recorded, as a planning pass that started just before a delivery finished sees it.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let listed!: () => void;
    const read = new Promise<void>((resolve) => (listed = resolve));
    const stale: StorageAdapter = Object.create(target) as StorageAdapter;
    stale.list = async function* (dir, options) {
      const entries: Entry[] = [];
      for await (const entry of target.list(dir, options)) entries.push(entry);
      listed();
      await held;
      yield* entries;
    };
    const planning = planTarget(sync, { adapter: source, scan, filter, hash: sourceHasher(source) }, stale, {
      records,
    });
    await read;
    const stored = await target.write("log.bin", Readable.from([data]), { size: data.length });
    records.set("log.bin", deliveryRecord({ size: data.length, modTime: sent.modTime }, stored));
    await records.save();
    release();
    await planning;

    assert.ok(records.get("log.bin"), "the delivery's record is kept");
    await records.save();
    const reopened = await storeDeliveries(store)(sync.name, "/dst");
    assert.ok(reopened.get("log.bin"), "and stays in the store");
  } finally {
    await store.close();
    for (const name of names) dropMemoryVolume(name);
  }
});

test("a farm printer's job folder is not the sync's: nothing in it is deleted, nothing is sent into it", async () => {
  const [source, target] = [randomUUID(), randomUUID()].map(memory) as [StorageAdapter, StorageAdapter];
  const put = (adapter: StorageAdapter, path: string, text: string) =>
    adapter.write(path, Readable.from([Buffer.from(text)]), { size: text.length });
  await put(source, "benchy.gcode", "benchy");
  await put(source, "ferry/stray.gcode", "a source file in the farm's folder");
  await put(target, "ferry/job-1.gcode", "a job's file, uploaded by the farm");
  await put(target, "old.gcode", "excess");
  const config = parseConfig(
    "syncs:\n  gcode: { source: /src, targets: [/dst], mode: mirror }\n",
    "/ferry.yaml",
    {
      deviceKinds,
      env: {},
    },
  );
  const sync = config.syncs.get("gcode");
  assert.ok(sync);
  const filter = fileFilter(sync.include, sync.exclude);
  const scanned = {
    adapter: source,
    scan: await scanSource(source, filter),
    filter,
    hash: sourceHasher(source),
  };
  const actions = async (reservedFolder?: string) =>
    (await planTarget(sync, scanned, target, { reservedFolder })).actions
      .filter((a) => a.type !== "skip")
      .map((a) => `${a.type} ${a.path}`)
      .sort();

  assert.deepEqual(await actions("ferry"), ["delete old.gcode", "upload benchy.gcode"]);
  const plain = await actions();
  assert.ok(
    plain.includes("delete ferry/job-1.gcode"),
    `without the rule the job's file is excess: ${plain.join(", ")}`,
  );
  const { notes } = await planTarget(sync, scanned, target, { reservedFolder: "ferry" });
  assert.deepEqual(notes, [
    "ferry/ on this printer is the print farm's: the source's files in it are not sent",
  ]);
});
