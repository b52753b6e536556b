/**
 * The connection checker: probes every device it tracks, keeps "online since / offline since" in
 * the store, and tells which devices are away so their queues pause (no retry storm) and resume by
 * themselves when the device is back.
 */
import { toFerryError } from "../core/errors.ts";
import type { DeviceState } from "../store/devices.ts";
import type { Activity, PrinterDriver } from "../printers/driver.ts";
import type { StorageAdapter } from "../storage/adapter.ts";

/** A printer at work shows as busy; one in error or asking for someone needs attention. */
const PRINTER_STATE: Readonly<Record<Activity, DeviceState>> = {
  idle: "online",
  finished: "online",
  stopped: "online",
  busy: "busy",
  printing: "busy",
  paused: "busy",
  error: "attention",
  attention: "attention",
};

// `busy`: a printer that answers but prints (its tasks wait at the idle gate, not here).
export type { DeviceState } from "../store/devices.ts";

export interface Probe {
  /** The device's name (or a local folder's label). */
  name: string;
  printer?: PrinterDriver;
  storage: StorageAdapter;
}

export interface DeviceStateStore {
  set(name: string, state: DeviceState, detail?: string): Promise<void>;
}

/** A device that cannot be probed (a write-only form) and refused us is tried again after this. */
export const REFUSED_RETRY_MS = 60_000;

export type StateChange = (name: string, state: DeviceState, detail: string, before?: DeviceState) => void;

export class ConnectionChecker {
  readonly #probes: Probe[] = [];
  readonly #store: DeviceStateStore;
  readonly #onChange: (name: string, state: DeviceState, detail: string, before?: DeviceState) => void;
  readonly #clock: () => number;
  readonly #states = new Map<string, { state: DeviceState; detail: string }>();
  /** When a task found a device refusing us, for devices a probe cannot check. */
  readonly #refusedAt = new Map<string, { at: number; detail: string }>();

  constructor(store: DeviceStateStore, onChange: StateChange, clock: () => number = Date.now) {
    this.#store = store;
    this.#onChange = onChange;
    this.#clock = clock;
  }

  /** Probes this device from now on (once per name). */
  track(probe: Probe): void {
    if (!this.#probes.some((p) => p.name === probe.name)) this.#probes.push(probe);
  }

  /** Stops probing a device (removed from the registry). */
  untrack(name: string): void {
    const at = this.#probes.findIndex((p) => p.name === name);
    if (at >= 0) this.#probes.splice(at, 1);
    this.#states.delete(name);
  }

  /**
   * A task was refused by the device (AUTH). A probe that can check credentials finds it again by
   * itself; a write-only target answers only uploads, so it is marked as needing attention here
   * and its work waits REFUSED_RETRY_MS before one upload tries again (not one every few seconds).
   */
  async refused(name: string, detail: string, signal?: AbortSignal): Promise<void> {
    const probe = this.#probes.find((p) => p.name === name);
    if (!probe) return;
    if (probe.printer || probe.storage.capabilities.list !== "none") {
      await this.probe(name, signal);
      return;
    }
    this.#refusedAt.set(name, { at: this.#clock(), detail });
    await this.probe(name, signal);
  }

  /** Devices whose work must wait: they do not answer, or refuse us. */
  away(): string[] {
    return [...this.#states]
      .filter(([, { state }]) => state === "offline" || state === "attention")
      .map(([name]) => name);
  }

  state(name: string): DeviceState | undefined {
    return this.#states.get(name)?.state;
  }

  /** Probes every device once (in parallel); resolves when all have answered. */
  async probeAll(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.#probes.map((probe) => this.probe(probe.name, signal)));
  }

  async probe(name: string, signal?: AbortSignal): Promise<DeviceState | undefined> {
    const probe = this.#probes.find((p) => p.name === name);
    if (!probe) return undefined;
    const [state, detail] = await this.#ask(probe, signal);
    const known = this.#states.get(name);
    const before = known?.state;
    this.#states.set(name, { state, detail });
    // A new detail is news too ("folder not created yet" → "reachable"); `since` moves only with the state.
    if (known?.detail !== detail && before === state) await this.#store.set(name, state, detail);
    if (before !== state) {
      // Published, not logged: `ferry serve` and the server show device changes from the event.
      await this.#store.set(name, state, detail);
      this.#onChange(name, state, detail, before);
    }
    return state;
  }

  async #ask(probe: Probe, signal?: AbortSignal): Promise<[DeviceState, string]> {
    const opts = signal ? { signal } : {};
    const refused = this.#refusedAt.get(probe.name);
    if (refused) {
      if (this.#clock() - refused.at < REFUSED_RETRY_MS) return ["attention", refused.detail];
      this.#refusedAt.delete(probe.name);
    }
    try {
      if (probe.printer) {
        const snapshot = await probe.printer.snapshot(opts);
        if (snapshot.connection === "offline") return ["offline", snapshot.offlineReason ?? "no answer"];
        if (snapshot.connection === "auth_failed") {
          return ["attention", snapshot.offlineReason ?? "the printer refuses the credentials"];
        }
        return [PRINTER_STATE[snapshot.activity], snapshot.rawState ?? snapshot.activity];
      }
      const storage = probe.storage;
      // A removable volume that is not attached answers UNAVAILABLE like a server that is down.
      if (storage.capabilities.list !== "none") {
        // A listing of the root proves reachability and credentials; its contents are not read.
        for await (const _ of storage.list("", opts)) break;
      }
      return ["online", "reachable"];
    } catch (error) {
      const failure = toFerryError(error);
      if (failure.code === "AUTH" || failure.code === "PERMISSION") return ["attention", failure.message];
      if (failure.code === "NOT_FOUND") return ["online", "reachable (folder not created yet)"];
      return ["offline", failure.message];
    }
  }
}
