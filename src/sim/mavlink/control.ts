/**
 * The simulator's control API on 127.0.0.1 (no authentication), for tests, the field engineer's
 * rehearsal and the benchmark:
 *
 *   GET    /_sim/state    {layout, mount, url, down, reboots, session_owner, faults, stats}
 *   PUT    /_sim/faults   {"loss"?: 0.05, "reorder"?: 0.01, "baud"?: 921600,
 *                          "reboot_after_bytes"?: n, "reboot_down_ms"?: 2000} → 204
 *   POST   /_sim/reboot   {"down_ms"?: 2000}: silent that long, sessions gone → 204
 *   POST   /_sim/hold     a second ground station takes the FTP session (others get Busy) → 204
 *   DELETE /_sim/hold     it lets go → 204
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { z } from "zod";
import { readSmallBody, sendEmpty, sendJson } from "../prusalink/http-util.ts";
import type { MavlinkSim } from "./index.ts";

const faultsBody = z.strictObject({
  loss: z.number().min(0).max(1).optional(),
  reorder: z.number().min(0).max(1).optional(),
  baud: z.number().int().min(0).optional(),
  reboot_after_bytes: z.number().int().min(0).optional(),
  reboot_down_ms: z.number().int().min(0).optional(),
});

const rebootBody = z.strictObject({ down_ms: z.number().int().min(0).optional() });

async function json<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const body = (await readSmallBody(req)).toString("utf8");
  return schema.parse(body.trim() === "" ? {} : JSON.parse(body));
}

async function route(sim: MavlinkSim, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://sim").pathname;
  const key = `${req.method ?? "GET"} ${path}`;
  switch (key) {
    case "GET /_sim/state":
      sendJson(res, 200, {
        layout: sim.layout,
        mount: sim.mount,
        url: sim.url,
        down: sim.down,
        reboots: sim.reboots,
        session_owner: sim.server.sessionOwner ?? null,
        faults: sim.faults,
        stats: sim.stats,
      });
      return;
    case "PUT /_sim/faults": {
      const body = await json(req, faultsBody);
      sim.setFaults({
        ...(body.loss === undefined ? {} : { loss: body.loss }),
        ...(body.reorder === undefined ? {} : { reorder: body.reorder }),
        ...(body.baud === undefined ? {} : { baud: body.baud }),
        ...(body.reboot_after_bytes === undefined ? {} : { rebootAfterBytes: body.reboot_after_bytes }),
        ...(body.reboot_down_ms === undefined ? {} : { rebootDownMs: body.reboot_down_ms }),
      });
      sendEmpty(res, 204);
      return;
    }
    case "POST /_sim/reboot": {
      const body = await json(req, rebootBody);
      sim.reboot(body.down_ms);
      sendEmpty(res, 204);
      return;
    }
    case "POST /_sim/hold":
      sim.holdSession();
      sendEmpty(res, 204);
      return;
    case "DELETE /_sim/hold":
      sim.releaseSession();
      sendEmpty(res, 204);
      return;
    default:
      sendJson(res, 404, { error: `no ${key}` });
  }
}

export async function startControlServer(sim: MavlinkSim, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    route(sim, req, res).catch((error: unknown) => {
      sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
