/**
 * The MAVLink FTP payload (the 251 bytes inside a FILE_TRANSFER_PROTOCOL message), its opcodes and
 * NAK codes, directory entries, and the vehicle's CRC32. Shared by the adapter and the simulator.
 */
import { crc32 } from "node:zlib";

export const OP = {
  None: 0,
  TerminateSession: 1,
  ResetSessions: 2,
  ListDirectory: 3,
  OpenFileRO: 4,
  ReadFile: 5,
  CreateFile: 6,
  WriteFile: 7,
  RemoveFile: 8,
  CreateDirectory: 9,
  RemoveDirectory: 10,
  OpenFileWO: 11,
  TruncateFile: 12,
  Rename: 13,
  CalcFileCRC32: 14,
  BurstReadFile: 15,
  ListDirectoryWithTime: 16,
  Ack: 128,
  Nak: 129,
} as const;

export const FTP_ERROR = {
  None: 0,
  Fail: 1,
  FailErrno: 2,
  InvalidDataSize: 3,
  InvalidSession: 4,
  NoSessionsAvailable: 5,
  EOF: 6,
  UnknownCommand: 7,
  FileExists: 8,
  FileProtected: 9,
  FileNotFound: 10,
} as const;

export const FTP_ERROR_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(FTP_ERROR).map(([name, code]) => [code, name]),
);

export const OP_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(OP).map(([name, code]) => [code, name]),
);

/** Bytes of FILE_TRANSFER_PROTOCOL.payload. */
export const PAYLOAD_BYTES = 251;
/** seq(2) session(1) opcode(1) size(1) req_opcode(1) burst_complete(1) padding(1) offset(4). */
export const HEADER_BYTES = 12;
/** Most data one message carries: a read chunk, a path, or both paths of a Rename. */
export const DATA_BYTES = PAYLOAD_BYTES - HEADER_BYTES;

export interface FtpPayload {
  seq: number;
  session: number;
  opcode: number;
  reqOpcode: number;
  burstComplete: boolean;
  offset: number;
  data: Buffer;
}

export function encodePayload(p: Partial<FtpPayload> & { seq: number; opcode: number }): Buffer {
  const data = p.data ?? Buffer.alloc(0);
  if (data.length > DATA_BYTES) throw new RangeError(`FTP data of ${data.length} bytes > ${DATA_BYTES}`);
  const out = Buffer.alloc(PAYLOAD_BYTES);
  out.writeUInt16LE(p.seq & 0xffff, 0);
  out[2] = p.session ?? 0;
  out[3] = p.opcode;
  out[4] = data.length;
  out[5] = p.reqOpcode ?? 0;
  out[6] = p.burstComplete === true ? 1 : 0;
  out.writeUInt32LE((p.offset ?? 0) >>> 0, 8);
  data.copy(out, HEADER_BYTES);
  return out;
}

/** Decodes a payload; undefined when it is too short to hold a header or its size is out of range. */
export function decodePayload(raw: Uint8Array | readonly number[]): FtpPayload | undefined {
  const bytes = Buffer.from(raw as Uint8Array);
  if (bytes.length < HEADER_BYTES) return undefined;
  const size = bytes[4] ?? 0;
  if (size > DATA_BYTES) return undefined;
  // MAVLink 2 trims trailing zero bytes off the wire; the codec pads them back, but be safe.
  const data = Buffer.alloc(size);
  bytes.copy(data, 0, HEADER_BYTES, Math.min(bytes.length, HEADER_BYTES + size));
  return {
    seq: bytes.readUInt16LE(0),
    session: bytes[2] ?? 0,
    opcode: bytes[3] ?? 0,
    reqOpcode: bytes[5] ?? 0,
    burstComplete: bytes[6] === 1,
    offset: bytes.readUInt32LE(8),
    data,
  };
}

export interface DirEntry {
  type: "file" | "dir";
  name: string;
  size?: number;
  /** Seconds since the epoch (ListDirectoryWithTime), 0 or absent when unknown. */
  mtime?: number;
}

/**
 * Parses the entries of a ListDirectory(WithTime) ACK. Returns how many entries the data held
 * (skip entries and unparsable ones count: the next request's offset goes past them) and the
 * usable ones.
 */
export function parseEntries(data: Buffer): { count: number; entries: DirEntry[] } {
  const entries: DirEntry[] = [];
  let count = 0;
  for (const raw of data.toString("utf8").split("\0")) {
    if (raw === "") continue;
    count++;
    const kind = raw[0];
    const [name = "", size, mtime] = raw.slice(1).split("\t");
    if (name === "" || name === "." || name === ".." || name.includes("/")) continue;
    if (kind === "D") entries.push({ type: "dir", name });
    else if (kind === "F") {
      const bytes = Number(size);
      if (size === undefined || !Number.isSafeInteger(bytes) || bytes < 0) continue;
      const seconds = mtime === undefined ? undefined : Number(mtime);
      entries.push({
        type: "file",
        name,
        size: bytes,
        ...(seconds !== undefined && Number.isSafeInteger(seconds) && seconds > 0 ? { mtime: seconds } : {}),
      });
    }
  }
  return { count, entries };
}

/** One directory entry as a vehicle sends it (the simulator's side of parseEntries). */
export function formatEntry(entry: DirEntry | { type: "skip" }, withTime: boolean): string {
  if (entry.type === "skip") return "S\0";
  if (entry.type === "dir") return `D${entry.name}\0`;
  const time = withTime ? `\t${entry.mtime ?? 0}` : "";
  return `F${entry.name}\t${entry.size ?? 0}${time}\0`;
}

/**
 * The CRC32 a flight controller answers CalcFileCRC32 with. PX4 (NuttX's crc32part) and ArduPilot
 * run the usual reflected CRC-32 table from 0, with no inversion at either end, so the value
 * differs from the zip/zlib CRC-32 of the same bytes. Both are computed with zlib's CRC32 here:
 * starting zlib from 0xffffffff and inverting its result runs exactly that register.
 */
export class VehicleCrc {
  #zlib = 0xffffffff;
  update(chunk: Uint8Array): void {
    this.#zlib = crc32(chunk, this.#zlib);
  }
  /** The value the vehicle computes over the bytes so far. */
  get value(): number {
    return ~this.#zlib >>> 0;
  }
}

export function vehicleCrc32(data: Uint8Array): number {
  const crc = new VehicleCrc();
  crc.update(data);
  return crc.value;
}

/**
 * The zlib (zip, PNG, gzip) CRC-32 of a file of `size` bytes whose vehicle CRC is `vehicle`: the
 * two registers differ by the CRC of `size` zero bytes run from 0xffffffff, since CRC is linear.
 */
export function standardCrc32(vehicle: number, size: number): number {
  const zeros = Buffer.alloc(Math.min(size, 1 << 20));
  let zlibOfZeros = 0; // zlib's crc32(zeros(size)) = ~register(0xffffffff, zeros)
  for (let left = size; left > 0; left -= zeros.length) {
    zlibOfZeros = crc32(left >= zeros.length ? zeros : zeros.subarray(0, left), zlibOfZeros);
  }
  return ~(vehicle ^ ~zlibOfZeros) >>> 0;
}

export const hex32 = (value: number): string => (value >>> 0).toString(16).padStart(8, "0");
