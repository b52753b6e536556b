/** The typed shape of a loaded ferry.yaml. Everything here has been validated once, at load time. */
import type { z } from "zod";
import type { NotifyConfig } from "./notify.ts";
import type { OpcuaConfig } from "./opcua.ts";
import type { ServerConfig } from "./server.ts";

/** A kind of device a ferry.yaml may declare; storage adapters' and printer drivers' definitions satisfy it. */
export interface DeviceKind {
  kind: string;
  /** Validates a device's options (everything but `type`); secrets come out as `Secret`. */
  optionsSchema: z.ZodType;
  /** What its files allow, from its storage capabilities (a write-only form cannot be a source). */
  storage?: { read: boolean; write: boolean; list: "none" | "flat" | "recursive" };
  /** A printer: its entries also take the farm keys (`farm`, `model`, `tags`, `auto_clear`, `camera_url`). */
  printer?: boolean;
}

/** What the farm knows of a printer, from the farm keys of its device entry. */
export interface PrinterSettings {
  /** `farm: true`: the farm schedules jobs onto it and watches it (default false). */
  farm: boolean;
  /** e.g. "MK4"; jobs may require one. */
  model?: string;
  /** Material, nozzle, location... (`[PLA, PETG]`); a job's required tags must all be here (case-insensitive). */
  tags: string[];
  /** The printer clears its own bed (a belt printer, an ejector): a printed job completes at once. */
  autoClear: boolean;
  /** A camera snapshot URL, for displays. */
  cameraUrl?: string;
}

/** The `farm:` section. */
export interface FarmConfig {
  /** true: the scheduler assigns queued jobs to printers; false: operators assign them (default true). */
  autoSchedule: boolean;
  /** Roles whose jobs wait for approval (admins' and operators' never do); default none. */
  approval: string[];
  /** At most this many printers heating at once, so starts are staggered (default 4). */
  maxHeating: number;
  /** Seconds between a printer worker's looks at a printer that pushes nothing (default 2). */
  intervalS: number;
}

export interface LoadOptions {
  /** Every `type:` a device may have. Injected so that config does not depend on storage or printers. */
  deviceKinds: readonly DeviceKind[];
  /** Where `${VAR}` is looked up first; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface DeviceConfig {
  name: string;
  /** The device's `type:`. */
  kind: string;
  /** Parsed by that kind's optionsSchema, without `type` and the farm keys; secrets are `Secret`s. */
  options: unknown;
  /** A printer's farm keys (every printer has them, with their defaults). */
  printer?: PrinterSettings;
}

export type Endpoint =
  | {
      type: "local";
      /** Absolute, resolved against the config file's folder (`~` expanded). */
      path: string;
      /** As written in the config, e.g. "./master". */
      label: string;
    }
  | {
      type: "device";
      device: string;
      /** Relative to the device's root, normalized (core/paths); "" is the root. */
      path: string;
      /** "mk4-a" or "mk4-a:models". */
      label: string;
    };

export type SyncMode = "mirror" | "copy" | "move";
export type SyncWhen = "idle" | "always";
export type SyncCompare = "size-mtime" | "checksum";

export interface SyncConfig {
  name: string;
  source: Endpoint;
  /** Groups already expanded into their devices, each keeping the path; no duplicates. */
  targets: Endpoint[];
  mode: SyncMode;
  /** Globs (picomatch) of relative paths to take; default ["**"]. */
  include: string[];
  /** Globs of relative paths to leave alone; default []. */
  exclude: string[];
  /** "idle": only touch printers whose activity is quiet; default "always". */
  when: SyncWhen;
  /** `mtime_tolerance` in seconds; default 60. */
  modTimeToleranceS: number;
  /** Default "size-mtime". */
  compare: SyncCompare;
  /**
   * Move mode, when the target holds a different file of the same name: `rename` sends the new one
   * as "name (1).ext" and keeps both (default), `overwrite` replaces it, `skip` leaves the source
   * file where it is. Mirror and copy replace, as they always do.
   */
  onConflict: "rename" | "overwrite" | "skip";
  /**
   * Names are always compared in Unicode NFC (a name in another form on the target is the same
   * file); `keep` sends each name as the source spells it, `nfc` sends it in NFC (e.g. from a Mac).
   */
  unicode: "keep" | "nfc";
  /** Follow live filesystem events of a local source (`ferry serve`). */
  watch: boolean;
  /** `poll:` full scan every this many seconds. */
  pollS?: number;
  /** `schedule:` cron expression for full scans. */
  schedule?: string;
  /** A watched sync rescans this often (default 600 s) so nothing missed is lost. */
  rescanS: number;
  /** Read the source once into data_dir/staging and fan out from there (slow or removable sources). */
  staging: boolean;
  /**
   * Move mode: a source file is deleted only once it has been unchanged this long (and no process
   * holds it open for writing, where the system tells); default 10 s for move, else 0.
   */
  settleS: number;
}

export interface FerryConfig {
  /** Absolute path of the config file. */
  file: string;
  /** The folder of the config file; relative paths in it are resolved against this. */
  baseDir: string;
  /** Absolute; `data_dir:` (default "./ferry-data"). */
  dataDir: string;
  devices: Map<string, DeviceConfig>;
  /** Group name → device names. */
  groups: Map<string, string[]>;
  syncs: Map<string, SyncConfig>;
  /** `server:`: the HTTP API `ferry serve` starts; absent: no server (unless `--listen`). */
  server?: ServerConfig;
  farm: FarmConfig;
  /** `notify:`: notification channels and rules; absent: Ferry notifies nobody. */
  notify?: NotifyConfig;
  /** `opcua:`: the printers mirrored into an OPC UA server, and/or Ferry's own OPC UA server. */
  opcua?: OpcuaConfig;
}
