/** The options of a `mavlink-ftp` device in ferry.yaml, and what the adapter can do. */
import { z } from "zod";
import type { Capabilities, StorageKind } from "../adapter.ts";

const id = z.number().int().min(1).max(255);

export type LinkAddress =
  | { kind: "udp"; host: string; port: number }
  | { kind: "udpin"; host: string; port: number }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "serial"; path: string; baud: number };

const DEFAULT_BAUD = 57_600;

/** Parses a link URL; throws an Error saying what is wrong with it. */
export function parseLinkUrl(text: string): LinkAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a URL: ${text}`);
  }
  const scheme = url.protocol.replace(/:$/, "");
  if (scheme === "serial") {
    const path = decodeURIComponent(url.pathname);
    if (url.host !== "" || path === "" || path === "/") {
      throw new Error(`a serial URL names a device: serial:///dev/ttyACM0?baud=921600, not ${text}`);
    }
    const baudText = url.searchParams.get("baud");
    const baud = baudText === null ? DEFAULT_BAUD : Number(baudText);
    if (!Number.isSafeInteger(baud) || baud < 300 || baud > 16_000_000) {
      throw new Error(`baud must be a whole number of bits per second, not ${baudText ?? ""}`);
    }
    return { kind: "serial", path, baud };
  }
  if (scheme !== "udp" && scheme !== "udpin" && scheme !== "tcp") {
    throw new Error(`the link must be udp://, udpin://, tcp:// or serial://, not ${scheme}://`);
  }
  const port = Number(url.port);
  if (url.hostname === "" || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`${scheme}:// needs a host and a port, e.g. ${scheme}://127.0.0.1:14550`);
  }
  return { kind: scheme, host: url.hostname.replace(/^\[|\]$/g, ""), port };
}

export const mavlinkFtpOptionsSchema = z.strictObject({
  /** udp://HOST:PORT, udpin://HOST:PORT, tcp://HOST:PORT or serial:///dev/ttyACM0?baud=921600. */
  url: z.string().superRefine((value, ctx) => {
    try {
      parseLinkUrl(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
    }
  }),
  /** Folder on the vehicle that is this device's root ("/fs/microsd/log", "/APM/LOGS", "@MAV_LOG"). */
  root: z.string().min(1).default("/"),
  target_system: id.default(1),
  target_component: id.default(1),
  /** Ferry's own ids on the link: a ground station's by default. */
  system_id: id.default(255),
  component_id: id.default(190),
  /** No HEARTBEAT from the vehicle for this long: it is offline (and a transfer waits for it). */
  heartbeat_timeout_s: z.number().positive().max(3600).default(5),
  /** How long a transfer waits for a vehicle that stopped answering (a reboot) before it fails. */
  reboot_wait_s: z.number().positive().max(3600).default(60),
  /** Tries of each request, and the limits of the wait for an answer (it follows the round trip). */
  retries: z.number().int().min(1).max(50).default(6),
  min_timeout_ms: z.number().int().min(5).max(60_000).default(50),
  max_timeout_ms: z.number().int().min(10).max(60_000).default(1500),
  /** ReadFile/WriteFile requests in flight at once. */
  window: z.number().int().min(1).max(64).default(16),
});

export type MavlinkFtpOptions = z.output<typeof mavlinkFtpOptionsSchema>;

/** The tab separates fields of a listing entry: a name with one cannot be listed. */
export const FORBIDDEN_CHARS = "\t";
/**
 * A Rename carries both full paths in one 239-byte message, and writes go through a temp name
 * beside the file, so names are kept short enough for both to fit under a deep root.
 */
export const MAX_NAME_BYTES = 64;

export const mavlinkFtpCapabilities: Readonly<Capabilities> = Object.freeze<Capabilities>({
  read: true,
  write: true,
  list: "flat",
  listSizes: true,
  // ListDirectoryWithTime carries whole seconds.
  modTimePrecisionMs: 1000,
  setModTime: false,
  // CalcFileCRC32, answered by the vehicle without sending the file.
  hashes: ["crc32"],
  rangeRead: true,
  resumableWrite: "none",
  partialWritesVisible: false,
  atomicRename: true,
  serverSideMove: true,
  // One file session per vehicle (PX4 has exactly one).
  maxConcurrency: 1,
  forbiddenChars: FORBIDDEN_CHARS,
  maxNameBytes: MAX_NAME_BYTES,
  // SD cards of flight controllers are FAT.
  caseInsensitive: true,
  watch: false,
  usage: false,
  removable: false,
});

export const mavlinkFtpKind: StorageKind<MavlinkFtpOptions> = {
  kind: "mavlink-ftp",
  optionsSchema: mavlinkFtpOptionsSchema,
  capabilities: mavlinkFtpCapabilities,
};
