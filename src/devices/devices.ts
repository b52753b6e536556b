/**
 * The runtime device registry: the devices of ferry.yaml and those added at run time (kept in the
 * store, so the server can add a printer without a restart), turned into live storage adapters and
 * printer drivers on first use and closed together; the connection checker that probes them; the
 * transfer slots of each; and the events `device.added`, `device.removed`, `device.state`. The one
 * place that knows which kinds exist.
 */
import {
  parsePrinterEntry,
  type DeviceConfig,
  type DeviceKind,
  type Endpoint,
  type FerryConfig,
  type SyncConfig,
} from "../config/index.ts";
import { FerryError } from "../core/errors.ts";
import type { Publisher } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { PrinterDriver, PrinterDriverDefinition } from "../printers/driver.ts";
import { printerDrivers } from "../printers/all.ts";
import type { StorageAdapter, StorageAdapterDefinition } from "../storage/adapter.ts";
import { storageAdapters } from "../storage/all.ts";
import { localAdapter } from "../storage/local/local.ts";
import { subtree } from "../storage/wrappers/subtree.ts";
import type { DeviceConfigs } from "../store/device-configs.ts";
import { ConnectionChecker, type DeviceStateStore } from "./checker.ts";
import type { DeviceEvents } from "./events.ts";
import { deviceQueues, MAX_SLOTS } from "./queues.ts";

/** Every kind a device may have, for config validation. */
export const deviceKinds: readonly DeviceKind[] = [
  ...storageAdapters.map(({ kind, optionsSchema, capabilities }) => ({
    kind,
    optionsSchema,
    storage: capabilities,
  })),
  // A printer's files can be read, written and listed; its entry also takes the farm keys.
  ...printerDrivers.map(({ kind, optionsSchema }) => ({ kind, optionsSchema, printer: true })),
];

function findKind<T extends { kind: string }>(list: readonly T[], kind: string): T | undefined {
  return list.find((definition) => definition.kind === kind);
}

/** The name a sync endpoint's device goes by: the device, or a local folder's label. */
export function deviceOf(endpoint: Endpoint): string {
  return endpoint.type === "device" ? endpoint.device : endpoint.label;
}

export interface DevicesOptions {
  bus?: Publisher<DeviceEvents>;
  /** Where the checker keeps device states (none: kept in memory only). */
  states?: DeviceStateStore;
  clock?: () => number;
}

export class Devices {
  readonly #config: FerryConfig;
  readonly #logger: Logger;
  readonly #bus: Publisher<DeviceEvents> | undefined;
  /** Devices added at run time, by name. */
  readonly #added = new Map<string, DeviceConfig>();
  readonly #printers = new Map<string, PrinterDriver>();
  readonly #storages = new Map<string, StorageAdapter>();
  /** Endpoint adapters by `<device or folder>\0<path>`, so every user of an endpoint shares one. */
  readonly #endpoints = new Map<string, StorageAdapter>();
  readonly checker: ConnectionChecker;

  constructor(config: FerryConfig, logger: Logger, options: DevicesOptions = {}) {
    this.#config = config;
    this.#logger = logger;
    this.#bus = options.bus;
    this.checker = new ConnectionChecker(
      options.states ?? { set: () => Promise.resolve() },
      (device, state, detail, before) =>
        this.#bus?.emit("device.state", {
          device,
          state,
          detail,
          since: Date.now(),
          ...(before === undefined ? {} : { before }),
        }),
      options.clock,
    );
  }

  /** The config the registry was built from. */
  get config(): FerryConfig {
    return this.#config;
  }

  #context(name: string) {
    return { name, logger: this.#logger.child({ device: name }), baseDir: this.#config.baseDir };
  }

  #device(name: string): DeviceConfig {
    const device = this.#config.devices.get(name) ?? this.#added.get(name);
    if (!device) throw new FerryError("NOT_FOUND", `unknown device "${name}"`, { subject: name });
    return device;
  }

  /** Every device's name: ferry.yaml's, then those added at run time. */
  names(): string[] {
    return [...this.#config.devices.keys(), ...this.#added.keys()];
  }

  has(name: string): boolean {
    return this.#config.devices.has(name) || this.#added.has(name);
  }

  /** A device's entry (type, options, a printer's farm keys); NOT_FOUND for an unknown name. */
  get(name: string): DeviceConfig {
    return this.#device(name);
  }

  /** Loads the devices added at run time from the store. A stored device that no longer validates is skipped with an error. */
  async load(configs: DeviceConfigs): Promise<void> {
    for (const record of await configs.all()) {
      if (this.#config.devices.has(record.name)) {
        this.#logger.warn(
          { device: record.name },
          `device ${record.name} is in ${this.#config.file}; the stored one is ignored`,
        );
        continue;
      }
      try {
        this.#put(record.name, record.kind, record.options, "store");
      } catch (error) {
        this.#logger.error(
          { device: record.name, err: (error as Error).message },
          "a stored device is not valid",
        );
      }
    }
  }

  /** Adds (or replaces) a device at run time and keeps it in the store. Bad options change nothing. */
  async add(
    configs: DeviceConfigs,
    name: string,
    kind: string,
    options: Record<string, unknown>,
  ): Promise<void> {
    if (this.#config.devices.has(name)) {
      throw new FerryError("EXISTS", `device "${name}" is defined in ${this.#config.file}; change it there`, {
        subject: name,
        retryable: false,
      });
    }
    this.#validate(name, kind, options);
    await configs.put({ name, kind, options });
    await this.#drop(name);
    this.#put(name, kind, options, "store");
  }

  /** Removes a device added at run time. */
  async remove(configs: DeviceConfigs, name: string): Promise<void> {
    if (this.#config.devices.has(name)) {
      throw new FerryError(
        "PERMISSION",
        `device "${name}" is defined in ${this.#config.file}; remove it there`,
        {
          subject: name,
          retryable: false,
        },
      );
    }
    if (!(await configs.remove(name)) && !this.#added.has(name)) {
      throw new FerryError("NOT_FOUND", `unknown device "${name}"`, { subject: name, retryable: false });
    }
    await this.#drop(name);
    this.#added.delete(name);
    this.checker.untrack(name);
    this.#bus?.emit("device.removed", { device: name });
  }

  /** Announces ferry.yaml's devices (once the listeners are in place). */
  announce(): void {
    for (const device of this.#config.devices.values())
      this.#bus?.emit("device.added", { device: device.name, kind: device.kind, source: "config" });
  }

  #validate(name: string, kind: string, options: Record<string, unknown>): Omit<DeviceConfig, "name"> {
    const definition = deviceKinds.find((k) => k.kind === kind);
    if (!definition) {
      throw new FerryError(
        "NAME_INVALID",
        `device "${name}": unknown type "${kind}" (one of ${deviceKinds.map((k) => k.kind).join(", ")})`,
        {
          subject: name,
          retryable: false,
        },
      );
    }
    const invalid = (problems: string[]) =>
      new FerryError("NAME_INVALID", `device "${name}": ${problems.join("; ")}`, {
        subject: name,
        retryable: false,
      });
    if (definition.printer === true) {
      const parsed = parsePrinterEntry(definition, options);
      if (!parsed.ok) throw invalid(parsed.problems);
      return { kind, options: parsed.options, printer: parsed.printer };
    }
    const parsed = definition.optionsSchema.safeParse(options);
    if (!parsed.success) {
      throw invalid(parsed.error.issues.map((i) => `${i.path.join(".") || "(options)"}: ${i.message}`));
    }
    return { kind, options: parsed.data };
  }

  #put(name: string, kind: string, options: Record<string, unknown>, source: "store"): void {
    this.#added.set(name, { name, ...this.#validate(name, kind, options) });
    this.#bus?.emit("device.added", { device: name, kind, source });
  }

  async #drop(name: string): Promise<void> {
    const open = [this.#storages.get(name), this.#printers.get(name)].filter((c) => c !== undefined);
    this.#storages.delete(name);
    this.#printers.delete(name);
    for (const key of this.#endpoints.keys())
      if (key.startsWith(`${name}\u0000`)) this.#endpoints.delete(key);
    await Promise.allSettled(open.map((closable) => closable.close()));
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

  /** The adapter for a sync endpoint, rooted at the endpoint's folder (one per endpoint). */
  endpoint(endpoint: Endpoint): StorageAdapter {
    const key = `${deviceOf(endpoint)}\u0000${endpoint.path}`;
    let adapter = this.#endpoints.get(key);
    if (!adapter) {
      adapter =
        endpoint.type === "local"
          ? localAdapter.create({ path: endpoint.path }, this.#context(endpoint.label))
          : subtree(this.storage(endpoint.device), endpoint.path);
      this.#endpoints.set(key, adapter);
    }
    return adapter;
  }

  /**
   * How many transfers the endpoint's device takes at once (its `maxConcurrency`, at most
   * MAX_SLOTS): each slot is one task queue, so every sync and target reaching the device shares
   * them, and a printer (one upload at a time) never meets its own "busy" refusal.
   */
  slots(endpoint: Endpoint): number {
    return Math.max(1, Math.min(MAX_SLOTS, this.endpoint(endpoint).capabilities.maxConcurrency));
  }

  /**
   * One line per device whose options send credentials in clear, naming it and saying why
   * (shown once when a command starts).
   */
  cleartextWarnings(names: Iterable<string> = this.names()): string[] {
    const warnings: string[] = [];
    for (const name of new Set(names)) {
      if (!this.has(name)) continue;
      const device = this.#device(name);
      const definition = (findKind(printerDrivers, device.kind) ?? findKind(storageAdapters, device.kind)) as
        { cleartext?: (options: unknown) => string | undefined } | undefined;
      const why = definition?.cleartext?.(device.options);
      if (why !== undefined) warnings.push(`device ${name}: ${why}`);
    }
    return warnings;
  }

  /** The devices a set of syncs reaches (local folders are none). */
  static of(syncs: Iterable<SyncConfig>): string[] {
    const names = new Set<string>();
    for (const sync of syncs)
      for (const e of [sync.source, ...sync.targets]) if (e.type === "device") names.add(e.device);
    return [...names];
  }

  /** Queues of the devices that are away: their tasks wait without being claimed. */
  pausedQueues(): string[] {
    return this.checker.away().flatMap(deviceQueues);
  }

  /** Probes the endpoint's device from now on (the checker's list). */
  track(endpoint: Endpoint): void {
    const name = deviceOf(endpoint);
    const printer = endpoint.type === "device" ? this.printer(endpoint.device) : undefined;
    const storage = endpoint.type === "device" ? this.storage(endpoint.device) : this.endpoint(endpoint);
    this.checker.track({ name, storage, ...(printer ? { printer } : {}) });
  }

  async close(): Promise<void> {
    const all = [...this.#storages.values(), ...this.#printers.values()];
    this.#endpoints.clear();
    this.#storages.clear();
    this.#printers.clear();
    await Promise.allSettled(all.map((closable) => closable.close()));
  }
}
