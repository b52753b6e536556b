/**
 * A config with no syncs gives `ferry sync` and `ferry serve` nothing to do. They say so and stop
 * before they create anything (the data folder, the store), so a stray or half-written ferry.yaml
 * leaves no trace.
 */
import type { FerryConfig } from "./types.ts";

/** Why there is nothing to run, or undefined when the config has a sync. */
export function nothingToDo(config: Pick<FerryConfig, "file" | "syncs" | "devices">): string | undefined {
  if (config.syncs.size > 0) return undefined;
  const devices = config.devices.size;
  const has =
    devices === 0 ? "no devices and no syncs" : `${devices} device${devices === 1 ? "" : "s"} but no syncs`;
  return `${config.file} has ${has}: nothing to do (add a sync under "syncs:"; see docs/configuration.md)`;
}

/** Names for a message: "a, b, c", or "none" (never an empty list that reads as a cut-off line). */
export function namesOrNone(names: Iterable<string>): string {
  return [...names].join(", ") || "none";
}
