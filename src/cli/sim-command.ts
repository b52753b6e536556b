/** `ferry sim prusalink`: simulated printers until Ctrl-C. */
import { startPrusaLinkSims } from "../sim/prusalink/index.ts";

export interface SimPrusaLinkOptions {
  port: number;
  count: number;
  username: string;
  password?: string;
  apiKey?: string;
  rate?: number;
  capacity?: number;
  /** Printer time runs this many times faster than the clock. */
  speed: number;
  model: "MK4" | "MK3";
  /** false with --no-content */
  content: boolean;
}

export async function simPrusaLinkCommand(options: SimPrusaLinkOptions): Promise<void> {
  const password = options.password ?? process.env.PRUSA_PASSWORD ?? "maker";
  const sims = await startPrusaLinkSims({
    port: options.port,
    count: options.count,
    username: options.username,
    password,
    model: options.model,
    speed: options.speed,
    storeContent: options.content,
    ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
  });
  for (const sim of sims) process.stdout.write(`PrusaLink ${options.model} simulator on ${sim.url}\n`);
  const speed = options.speed === 1 ? "" : `; printer time runs ${options.speed}× the clock`;
  process.stdout.write(`user "${options.username}"; control API under /_sim/${speed}; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await Promise.all(sims.map((sim) => sim.close()));
}
