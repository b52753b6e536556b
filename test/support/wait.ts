/**
 * The one way tests wait: on a condition, never for a fixed time. `waitFor` polls `check` until it
 * gives a value (anything but undefined, null or false) and returns that value; after `timeoutMs`
 * it fails naming what was awaited, how long it waited and, when given, what it saw last. A check
 * that throws ends the wait with its error (e.g. "the server exited"), so a lost cause fails fast.
 *
 *   const transfer = await waitFor("the upload to reach the printer", () => sim.snapshot().transfer);
 *   await waitFor("the partial file to hold 1 MiB", async () => (await size()) >= MiB, {
 *     timeoutMs: 60_000,
 *     detail: async () => `it holds ${await size()} bytes`,
 *   });
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Generous, for a loaded 2-core CI machine: a wait that succeeds returns as soon as it can. */
export const DEFAULT_WAIT_MS = 60_000;

export interface WaitOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** Pause between checks (default 20 ms). */
  intervalMs?: number;
  /** What was seen, for the timeout message ("the file holds 12 bytes"). */
  detail?: () => string | Promise<string>;
}

type Pending = undefined | null | false;

export async function waitFor<T>(
  what: string,
  check: () => T | Pending | Promise<T | Pending>,
  options: WaitOptions = {},
): Promise<Exclude<T, Pending>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const started = performance.now();
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value as Exclude<T, Pending>;
    if (performance.now() - started > timeoutMs) {
      const detail = options.detail ? `; ${await options.detail()}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}
