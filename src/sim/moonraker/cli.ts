/** `ferry sim moonraker`: simulated Moonraker servers with their Klipper printers until Ctrl-C. */
import { startMoonrakerSims } from "./index.ts";

export interface SimMoonrakerOptions {
  port: number;
  count: number;
  apiKey?: string;
  rate?: number;
  capacity?: number;
  /** Printer time runs this many times faster than the clock. */
  speed: number;
  /** false with --no-content */
  content: boolean;
}

export async function simMoonrakerCommand(options: SimMoonrakerOptions): Promise<void> {
  const apiKey = options.apiKey ?? process.env.MOONRAKER_KEY;
  const sims = await startMoonrakerSims({
    port: options.port,
    count: options.count,
    speed: options.speed,
    storeContent: options.content,
    ...(apiKey === undefined || apiKey === "" ? {} : { apiKey }),
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
  });
  for (const sim of sims) process.stdout.write(`Moonraker simulator on ${sim.url}\n`);
  const auth = apiKey ? "X-Api-Key required" : "every client trusted (no --api-key)";
  const speed = options.speed === 1 ? "" : `; printer time runs ${options.speed}× the clock`;
  process.stdout.write(`${auth}; control API under /_sim/${speed}; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await Promise.all(sims.map((sim) => sim.close()));
}
