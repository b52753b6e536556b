/** A simulated flight controller and an adapter on it, for this folder's tests. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../core/logger.ts";
import { MavlinkSim, type MavlinkSimOptions } from "../../sim/mavlink/index.ts";
import { MavlinkFtpStorage, mavlinkFtpAdapter, mavlinkFtpOptionsSchema } from "./mavlink-ftp.ts";

export interface Rig {
  sim: MavlinkSim;
  logs: string;
  open(extra?: Record<string, unknown>): MavlinkFtpStorage;
  close(): Promise<void>;
}

export async function startRig(options: Partial<MavlinkSimOptions> = {}): Promise<Rig> {
  const logs = await mkdtemp(join(tmpdir(), "ferry-mavlink-logs-"));
  const sim = await MavlinkSim.start({ logs, ...options });
  const opened: MavlinkFtpStorage[] = [];
  return {
    sim,
    logs,
    open(extra = {}) {
      const adapter = mavlinkFtpAdapter.create(
        mavlinkFtpOptionsSchema.parse({ url: sim.url, root: sim.mount, ...extra }),
        { name: "drone", logger: silentLogger, baseDir: "/" },
      );
      if (!(adapter instanceof MavlinkFtpStorage)) throw new Error("not a mavlink-ftp adapter");
      opened.push(adapter);
      return adapter;
    },
    async close() {
      for (const adapter of opened) await adapter.close();
      await sim.close();
      await rm(logs, { recursive: true, force: true });
    },
  };
}
