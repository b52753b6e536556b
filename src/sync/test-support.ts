/** A folder, one simulated printer `p` and a config of syncs onto it, for runSync tests. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type FerryConfig, type SyncConfig } from "../config/index.ts";
import { silentLogger } from "../core/logger.ts";
import { Devices, deviceKinds } from "../devices/devices.ts";
import { PrusaLinkSim, type PrusaLinkSimOptions } from "../sim/prusalink/index.ts";

export interface PrinterFixture {
  /** The config's folder: sources are relative to it. */
  dir: string;
  sim: PrusaLinkSim;
  config: FerryConfig;
  devices: Devices;
  sync(name: string): SyncConfig;
  close(): Promise<void>;
}

/** `syncs` are YAML lines under `syncs:`, e.g. `gcode: { source: ./master, targets: [p], mode: mirror }`. */
export async function printerFixture(
  syncs: readonly string[],
  simOptions: PrusaLinkSimOptions = {},
): Promise<PrinterFixture> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-printer-"));
  const sim = await PrusaLinkSim.start({ port: 0, password: "pw", ...simOptions });
  const config = parseConfig(
    [
      "devices:",
      `  p: { type: prusalink, url: "${sim.url}", username: maker, password: pw }`,
      "syncs:",
      ...syncs.map((line) => `  ${line}`),
      "",
    ].join("\n"),
    join(dir, "ferry.yaml"),
    { deviceKinds, env: {} },
  );
  const devices = new Devices(config, silentLogger);
  return {
    dir,
    sim,
    config,
    devices,
    sync(name) {
      const sync = config.syncs.get(name);
      if (!sync) throw new Error(`no sync ${name}`);
      return sync;
    },
    async close() {
      await devices.close();
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
