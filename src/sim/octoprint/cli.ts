/** `ferry sim octoprint`: simulated OctoPrint servers with their printers until Ctrl-C. */
import { STOCK_EXTENSIONS } from "./names.ts";
import { startOctoPrintSims } from "./index.ts";

export interface SimOctoPrintOptions {
  port: number;
  count: number;
  apiKey?: string;
  rate?: number;
  capacity?: number;
  /** Printer time runs this many times faster than the clock. */
  speed: number;
  bgcode?: boolean;
  /** false with --no-content */
  content: boolean;
}

export async function simOctoPrintCommand(options: SimOctoPrintOptions): Promise<void> {
  const apiKey = options.apiKey ?? process.env.OCTO_KEY ?? "octoprint";
  const sims = await startOctoPrintSims({
    port: options.port,
    count: options.count,
    apiKey,
    speed: options.speed,
    storeContent: options.content,
    extensions: options.bgcode === true ? [...STOCK_EXTENSIONS, "bgcode"] : STOCK_EXTENSIONS,
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
  });
  for (const sim of sims) process.stdout.write(`OctoPrint simulator on ${sim.url}\n`);
  process.stdout.write(`API key from --api-key or $OCTO_KEY; control API under /_sim/; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await Promise.all(sims.map((sim) => sim.close()));
}
