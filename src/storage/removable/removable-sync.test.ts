/** A removable volume as a sync's source and as its target, through the one-shot `runSync`. */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, it } from "node:test";
import { parseConfig } from "../../config/load.ts";
import { silentLogger } from "../../core/logger.ts";
import { Devices, deviceKinds } from "../../devices/devices.ts";
import type { TargetReport } from "../../sync/events.ts";
import { runSync } from "../../sync/run.ts";
import { StagedVolume, UUID } from "./test-support.ts";

let volume: StagedVolume;
let devices: Devices;
/** Runs the named sync once; its one target's report. */
let run: (name: string) => Promise<TargetReport>;
beforeEach(async () => {
  volume = await StagedVolume.create();
  const usb = `{ type: removable, uuid: ${UUID}, by_uuid_dir: ./by-uuid, by_label_dir: ./by-label, mountinfo: ./mountinfo }`;
  const config = parseConfig(
    [
      "devices:",
      `  usb: ${usb}`,
      "syncs:",
      "  pull: { source: usb:logs, targets: [./pulled], mode: copy }",
      "  push: { source: ./master, targets: [usb:prints], mode: mirror }",
      "",
    ].join("\n"),
    join(volume.base, "ferry.yaml"),
    { deviceKinds, env: {} },
  );
  devices = new Devices(config, silentLogger);
  run = async (name) => {
    const sync = config.syncs.get(name);
    assert.ok(sync);
    const [report] = await runSync(sync, devices);
    assert.ok(report);
    return report;
  };
});
afterEach(async () => {
  await devices.close();
  await volume.cleanup();
});

it("pulls from the volume and mirrors onto it; a second run plans nothing", async () => {
  await volume.attach();
  await fs.mkdir(join(volume.mountPoint, "logs"), { recursive: true });
  await fs.writeFile(join(volume.mountPoint, "logs", "flight 1.bin"), "log one");
  await fs.mkdir(join(volume.base, "master"));
  await fs.writeFile(join(volume.base, "master", "benchy.gcode"), "G28");
  for (const name of ["pull", "push"]) assert.equal((await run(name)).outcome, "done", name);
  assert.equal(await fs.readFile(join(volume.base, "pulled", "flight 1.bin"), "utf8"), "log one");
  assert.equal(await fs.readFile(join(volume.mountPoint, "prints", "benchy.gcode"), "utf8"), "G28");
  for (const name of ["pull", "push"]) assert.equal((await run(name)).planned, 0, `${name} again`);
});

it("reports the volume unreachable while it is away, and delivers once it is back", async () => {
  await fs.mkdir(join(volume.base, "master"));
  await fs.writeFile(join(volume.base, "master", "benchy.gcode"), "G28");
  for (const name of ["pull", "push"]) {
    const report = await run(name);
    assert.notEqual(report.outcome, "done", name);
    assert.match(JSON.stringify(report), /usb: volume UUID 1234-ABCD is not attached/, name);
  }
  await volume.attach();
  assert.equal((await run("push")).outcome, "done");
  assert.equal(await fs.readFile(join(volume.mountPoint, "prints", "benchy.gcode"), "utf8"), "G28");
});
