import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError, parseConfig } from "../config/index.ts";
import { EventBus } from "../core/events.ts";
import { silentLogger } from "../core/logger.ts";
import { openMemoryStore, type Store } from "../store/store.ts";
import { DeviceConfigs } from "../store/device-configs.ts";
import { Devices, deviceKinds } from "./devices.ts";
import type { DeviceEvents } from "./events.ts";

describe("the device registry", () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-devices-"));
    store = await openMemoryStore();
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("offers no memory device: a device whose files die with the process has no place in a config", () => {
    assert.ok(!deviceKinds.some((k) => k.kind === "memory"));
    assert.throws(
      () =>
        parseConfig("devices:\n  m: { type: memory }\n", join(dir, "ferry.yaml"), { deviceKinds, env: {} }),
      (error: Error) => error instanceof ConfigError && !/memory,|, memory/.test(error.message),
    );
  });

  test("adds a device at run time, keeps it in the store, and says so; bad options change nothing", async () => {
    const config = parseConfig("syncs: {}\n", join(dir, "ferry.yaml"), { deviceKinds, env: {} });
    const bus = new EventBus<DeviceEvents>();
    const seen: string[] = [];
    bus.onAny((e) => seen.push(`${e.type} ${JSON.stringify(e.payload)}`));
    const configs = new DeviceConfigs(store);
    const devices = new Devices(config, silentLogger, { bus });
    await devices.add(configs, "shelf", "local", { path: join(dir, "shelf") });
    await assert.rejects(devices.add(configs, "bad", "local", {}), /device "bad": path/);
    assert.deepEqual(devices.names(), ["shelf"]);
    // A new process finds it in the store.
    const again = new Devices(config, silentLogger);
    await again.load(configs);
    assert.deepEqual(again.names(), ["shelf"]);
    await devices.remove(configs, "shelf");
    assert.deepEqual(
      (await configs.all()).map((d) => d.name),
      [],
    );
    assert.deepEqual(
      seen.map((s) => s.split(" ")[0]),
      ["device.added", "device.removed"],
    );
    await devices.close();
    await again.close();
  });

  test("a folder that gets created is no longer reported as not created yet", async () => {
    const config = parseConfig(
      "syncs:\n  s: { source: ./in, targets: [./out], mode: copy }\n",
      join(dir, "ferry.yaml"),
      {
        deviceKinds,
        env: {},
      },
    );
    const states: string[] = [];
    const devices = new Devices(config, silentLogger, {
      states: {
        set: (name, state, detail) => Promise.resolve(void states.push(`${name} ${state} ${detail ?? ""}`)),
      },
    });
    const out = config.syncs.get("s")?.targets[0];
    assert.ok(out);
    devices.track(out);
    await devices.checker.probeAll();
    await mkdir(join(dir, "out"));
    await devices.checker.probeAll();
    assert.deepEqual(states, ["./out online reachable (folder not created yet)", "./out online reachable"]);
    await devices.close();
  });

  test("names each device whose options send credentials in clear, once, and says why", () => {
    const config = parseConfig(
      [
        "devices:",
        "  plain: { type: ftp, host: 127.0.0.1, username: u, password: p }",
        "  tls: { type: ftp, host: 127.0.0.1, username: u, password: p, secure: true }",
        "  dav: { type: webdav, url: http://127.0.0.1/dav, username: u, password: p }",
        "  davs: { type: webdav, url: https://127.0.0.1/dav, username: u, password: p }",
        "  mk4: { type: prusalink, url: http://127.0.0.1, username: maker, password: p }",
        "  mk3: { type: prusalink, url: http://127.0.0.1, api_key: k }",
        "",
      ].join("\n"),
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const devices = new Devices(config, silentLogger);
    assert.deepEqual(devices.cleartextWarnings(), [
      "device plain: plain FTP sends the password in clear (secure: true uses TLS)",
      "device dav: Basic authentication over http:// sends the password in clear (use https://, or auth: digest)",
      "device mk3: the API key goes over http:// in clear (a password uses Digest and never travels)",
    ]);
  });
});
