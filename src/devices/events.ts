/** What the device registry publishes (docs/events.md has the whole vocabulary). */
import type { DeviceState } from "../store/devices.ts";

export interface DeviceEvents {
  /** A device joined the registry (from ferry.yaml at start, or added at run time). */
  "device.added": { device: string; kind: string; source: "config" | "store" };
  "device.removed": { device: string };
  /** The connection checker saw the device change state (or its detail change). */
  "device.state": { device: string; state: DeviceState; detail: string; since: number; before?: DeviceState };
}
