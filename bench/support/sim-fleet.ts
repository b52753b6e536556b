/**
 * A fleet of simulated printers for the farm and dashboard benchmarks: half PrusaLink, half
 * OctoPrint, each kind in one `ferry sim` process of its own (so the node measured does not carry
 * them), on consecutive ports below Linux's ephemeral range (32768+), where no outgoing connection
 * holds one of them (ADR 8).
 */
import { spawn, type ChildProcess } from "node:child_process";

const cli = new URL("../../bin/ferry.js", import.meta.url).pathname;

export interface SimFleet {
  prusaCount: number;
  octoCount: number;
  /** The printer `i` of the fleet (PrusaLink first): its kind and port. */
  printer(i: number): { kind: "prusalink" | "octoprint"; port: number };
  children: ChildProcess[];
}

/** A `ferry sim` process serving `count` printers; resolves once every one listens. */
async function startSims(
  kind: "prusalink" | "octoprint",
  count: number,
  port: number,
): Promise<ChildProcess> {
  const auth = kind === "prusalink" ? ["--password", "bench"] : ["--api-key", "bench"];
  const child = spawn(
    process.execPath,
    [cli, "sim", kind, "--count", String(count), "--port", String(port), ...auth, "--no-content"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${kind} simulators exited with ${code}`)));
    child.stdout.on("data", (chunk: Buffer) => {
      seen += chunk.toString().split("simulator on").length - 1;
      if (seen >= count) resolve();
    });
  });
  return child;
}

/** Starts `printers` simulated printers (PrusaLink password and OctoPrint key: "bench"). */
export async function startSimFleet(printers: number): Promise<SimFleet> {
  const prusaCount = Math.ceil(printers / 2);
  const octoCount = printers - prusaCount;
  const prusaPort = 20000 + Math.floor(Math.random() * (12000 - printers));
  const octoPort = prusaPort + prusaCount;
  const children = await Promise.all([
    startSims("prusalink", prusaCount, prusaPort),
    startSims("octoprint", octoCount, octoPort),
  ]);
  return {
    prusaCount,
    octoCount,
    printer: (i) =>
      i < prusaCount
        ? { kind: "prusalink", port: prusaPort + i }
        : { kind: "octoprint", port: octoPort + i - prusaCount },
    children,
  };
}

export const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
