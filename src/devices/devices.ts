/**
 * Turns the devices of a loaded config into live storage adapters and printer drivers, created on
 * first use and closed together. The one place that knows which kinds exist.
 */
import type { FerryConfig } from "../config/index.ts";
import type { Logger } from "../core/logger.ts";
import { FerryError } from "../core/errors.ts";
import { Semaphore } from "../core/semaphore.ts";
import type { PrinterDriver, PrinterDriverDefinition } from "../printers/driver.ts";
import { printerDrivers } from "../printers/all.ts";
import type { StorageAdapter, StorageAdapterDefinition } from "../storage/adapter.ts";
import { storageAdapters } from "../storage/all.ts";
import { localAdapter } from "../storage/local/local.ts";
import { subtree } from "../storage/wrappers/subtree.ts";
import type { DeviceKind, Endpoint } from "../config/index.ts";

/** Every kind a device in ferry.yaml may have, for config validation. */
export const deviceKinds: readonly DeviceKind[] = [
  ...storageAdapters.map(({ kind, optionsSchema, capabilities }) => ({
    kind,
    optionsSchema,
    storage: capabilities,
  })),
  // A printer's files can be read, written and listed.
  ...printerDrivers,
];

function findKind<T extends { kind: string }>(list: readonly T[], kind: string): T | undefined {
  return list.find((definition) => definition.kind === kind);
}

export class Devices {
  readonly #config: FerryConfig;
  readonly #logger: Logger;
  readonly #printers = new Map<string, PrinterDriver>();
  readonly #storages = new Map<string, StorageAdapter>();
  readonly #slots = new Map<string, Semaphore>();

  constructor(config: FerryConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  #context(name: string) {
    return { name, logger: this.#logger.child({ device: name }), baseDir: this.#config.baseDir };
  }

  #device(name: string) {
    const device = this.#config.devices.get(name);
    if (!device) throw new FerryError("NOT_FOUND", `unknown device "${name}"`, { subject: name });
    return device;
  }

  /** The device's printer driver, or undefined when the device is not a printer. */
  printer(name: string): PrinterDriver | undefined {
    const existing = this.#printers.get(name);
    if (existing) return existing;
    const device = this.#device(name);
    const definition = findKind(printerDrivers, device.kind) as PrinterDriverDefinition<unknown> | undefined;
    if (!definition) return undefined;
    const driver = definition.create(device.options, this.#context(name));
    this.#printers.set(name, driver);
    return driver;
  }

  /** The device's files (for a printer, its storage). */
  storage(name: string): StorageAdapter {
    const existing = this.#storages.get(name);
    if (existing) return existing;
    const printer = this.printer(name);
    let adapter: StorageAdapter;
    if (printer) {
      adapter = printer.storage();
    } else {
      const device = this.#device(name);
      const definition = findKind(storageAdapters, device.kind) as
        StorageAdapterDefinition<unknown> | undefined;
      if (!definition)
        throw new FerryError("UNSUPPORTED", `device "${name}" has unknown type "${device.kind}"`);
      adapter = definition.create(device.options, this.#context(name));
    }
    this.#storages.set(name, adapter);
    return adapter;
  }

  /** The adapter for a sync endpoint, rooted at the endpoint's folder. */
  endpoint(endpoint: Endpoint): StorageAdapter {
    if (endpoint.type === "local") {
      return localAdapter.create({ path: endpoint.path }, this.#context(endpoint.label));
    }
    return subtree(this.storage(endpoint.device), endpoint.path);
  }

  /**
   * The transfers an endpoint's device takes at once (its `maxConcurrency`), shared by every sync
   * and target that reaches the device: two syncs onto one printer take turns instead of meeting
   * its "one transfer at a time" refusal.
   */
  transferSlots(endpoint: Endpoint): Semaphore {
    const key = endpoint.type === "device" ? `device:${endpoint.device}` : `local:${endpoint.path}`;
    let slots = this.#slots.get(key);
    if (!slots) {
      slots = new Semaphore(this.endpoint(endpoint).capabilities.maxConcurrency);
      this.#slots.set(key, slots);
    }
    return slots;
  }

  async close(): Promise<void> {
    const all = [...this.#storages.values(), ...this.#printers.values()];
    this.#storages.clear();
    this.#printers.clear();
    await Promise.allSettled(all.map((closable) => closable.close()));
  }
}
