/** `ferry sim mavlink`: a simulated flight controller serving a folder of logs until Ctrl-C. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { MavlinkSim, type Layout } from "./index.ts";

export interface SimMavlinkOptions {
  /** "HOST:PORT" */
  udp: string;
  logs: string;
  layout: Layout;
  loss: number;
  reorder: number;
  baud: number;
  pty: boolean;
  controlPort: number;
  /** Logs to make in an empty folder (0: serve what is there). */
  generate: number;
  logSize: number;
  systemId: number;
}

/** The HOST:PORT of --udp; throws a message naming the option. */
export function parseUdp(text: string): { host: string; port: number } {
  const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || match[1] === "" || port < 0 || port > 65_535) {
    throw new Error(`--udp must be HOST:PORT, e.g. 127.0.0.1:14550, not ${text}`);
  }
  return { host: match[1] ?? "127.0.0.1", port };
}

/** Makes `count` logs where each autopilot keeps them: PX4 <date>/<time>.ulg, ArduPilot NNNNNNNN.BIN. */
export async function generateLogs(
  dir: string,
  layout: Layout,
  count: number,
  size: number,
): Promise<string[]> {
  const made: string[] = [];
  for (let i = 0; i < count; i++) {
    const path =
      layout === "px4"
        ? join("2024-05-01", `12_${String(i).padStart(2, "0")}_00.ulg`)
        : `${String(i + 1).padStart(8, "0")}.BIN`;
    const header =
      layout === "px4" ? Buffer.from("554c6f6701123501", "hex") : Buffer.from([0xa3, 0x95, 0x80]);
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), Buffer.concat([header, randomBytes(Math.max(0, size - header.length))]));
    made.push(path);
  }
  return made;
}

export async function simMavlinkCommand(options: SimMavlinkOptions): Promise<void> {
  if (options.generate > 0)
    await generateLogs(options.logs, options.layout, options.generate, options.logSize);
  const sim = await MavlinkSim.start({
    logs: options.logs,
    layout: options.layout,
    pty: options.pty,
    ...(options.pty ? {} : { udp: parseUdp(options.udp) }),
    systemId: options.systemId,
    controlPort: options.controlPort,
    faults: { loss: options.loss, reorder: options.reorder, baud: options.baud },
  });
  const where = options.pty ? `serial pty ${sim.ptyPath ?? ""}` : sim.url;
  process.stdout.write(
    `MAVLink ${options.layout} flight controller (system ${options.systemId}) on ${where}\n`,
  );
  process.stdout.write(`serving ${options.logs} as ${sim.mount}; device url: ${sim.url}\n`);
  process.stdout.write(`control API under ${sim.controlUrl ?? ""}; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await sim.close();
}
