/**
 * Just enough of ZIP (PKWARE APPNOTE) to read a 3MF: the end-of-central-directory record, the
 * central directory's entries, and an entry's data (stored or deflated), bounded or streamed.
 * ZIP64 and encrypted entries are refused with a reason. Never throws on a file's content: every
 * problem comes back as a `ZipProblem`.
 */
import { pipeline } from "node:stream/promises";
import { crc32, createInflateRaw, inflateRawSync } from "node:zlib";
import type { ByteSource } from "./types.ts";

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  encrypted: boolean;
}

export class ZipProblem extends Error {
  override readonly name = "ZipProblem";
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_BYTES = 22;
/** A central directory past this is not a 3MF's: refused rather than read into memory. */
const MAX_DIRECTORY_BYTES = 16 << 20;
const CHUNK = 64 * 1024;

export async function zipEntries(source: ByteSource): Promise<ZipEntry[]> {
  if (source.size < EOCD_BYTES) throw new ZipProblem(`not a ZIP archive: ${source.size} bytes`);
  const tailBytes = Math.min(source.size, EOCD_BYTES + 0xffff);
  const tail = await source.read(source.size - tailBytes, tailBytes);
  let at = -1;
  for (let i = tail.length - EOCD_BYTES; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new ZipProblem("not a ZIP archive: no end of central directory record");
  const count = tail.readUInt16LE(at + 10);
  const directoryBytes = tail.readUInt32LE(at + 12);
  const directoryOffset = tail.readUInt32LE(at + 16);
  if (count === 0xffff || directoryBytes === 0xffffffff || directoryOffset === 0xffffffff) {
    throw new ZipProblem("a ZIP64 archive, not read");
  }
  if (directoryBytes > MAX_DIRECTORY_BYTES)
    throw new ZipProblem(`a central directory of ${directoryBytes} bytes, not read`);
  if (directoryOffset + directoryBytes > source.size)
    throw new ZipProblem("truncated: the central directory lies past the end of the file");
  const directory = await source.read(directoryOffset, directoryBytes);
  const entries: ZipEntry[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 46 > directory.length || directory.readUInt32LE(offset) !== CENTRAL) {
      throw new ZipProblem(`central directory entry ${i + 1} of ${count} is damaged`);
    }
    const nameBytes = directory.readUInt16LE(offset + 28);
    const extraBytes = directory.readUInt16LE(offset + 30);
    const commentBytes = directory.readUInt16LE(offset + 32);
    entries.push({
      name: directory.toString("utf8", offset + 46, offset + 46 + nameBytes),
      encrypted: (directory.readUInt16LE(offset + 8) & 1) === 1,
      method: directory.readUInt16LE(offset + 10),
      crc32: directory.readUInt32LE(offset + 16),
      compressedSize: directory.readUInt32LE(offset + 20),
      size: directory.readUInt32LE(offset + 24),
      localHeaderOffset: directory.readUInt32LE(offset + 42),
    });
    offset += 46 + nameBytes + extraBytes + commentBytes;
  }
  return entries;
}

async function dataOffset(source: ByteSource, entry: ZipEntry): Promise<number> {
  if (entry.encrypted) throw new ZipProblem(`${entry.name}: encrypted`);
  if (entry.method !== 0 && entry.method !== 8)
    throw new ZipProblem(`${entry.name}: compression method ${entry.method}, not read`);
  const local = await source.read(entry.localHeaderOffset, 30);
  if (local.length < 30 || local.readUInt32LE(0) !== LOCAL)
    throw new ZipProblem(`${entry.name}: no local header where the directory says`);
  const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (start + entry.compressedSize > source.size) throw new ZipProblem(`${entry.name}: truncated`);
  return start;
}

/** An entry's whole content, when it is at most `maxBytes`; its CRC32 checked. */
export async function readEntry(source: ByteSource, entry: ZipEntry, maxBytes: number): Promise<Buffer> {
  if (entry.size > maxBytes)
    throw new ZipProblem(`${entry.name}: ${entry.size} bytes, larger than ${maxBytes}, not read`);
  const start = await dataOffset(source, entry);
  const raw = await source.read(start, entry.compressedSize);
  let data: Buffer;
  try {
    data = entry.method === 0 ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (error) {
    throw new ZipProblem(`${entry.name}: does not inflate (${(error as Error).message})`);
  }
  if (data.length !== entry.size || crc32(data) !== entry.crc32)
    throw new ZipProblem(`${entry.name}: CRC32 or size does not match`);
  return data;
}

/**
 * An entry's content as a stream of chunks, read and inflated a piece at a time; `onChunk` ends
 * it early by answering true. The CRC32 is checked when the whole entry was read.
 */
export async function streamEntry(
  source: ByteSource,
  entry: ZipEntry,
  onChunk: (chunk: Buffer) => boolean | undefined,
): Promise<void> {
  const start = await dataOffset(source, entry);
  async function* compressed() {
    for (let at = 0; at < entry.compressedSize; at += CHUNK) {
      yield await source.read(start + at, Math.min(CHUNK, entry.compressedSize - at));
    }
  }
  let crc = 0;
  let bytes = 0;
  const stopped = new Error("stopped");
  const consume = async (output: AsyncIterable<Buffer>) => {
    for await (const chunk of output) {
      crc = crc32(chunk, crc);
      bytes += chunk.length;
      if (onChunk(chunk) === true) throw stopped;
    }
  };
  try {
    if (entry.method === 0) await pipeline(compressed, consume);
    else await pipeline(compressed, createInflateRaw(), consume);
  } catch (error) {
    if (error === stopped) return;
    throw new ZipProblem(`${entry.name}: does not inflate (${(error as Error).message})`);
  }
  if (bytes !== entry.size || crc !== entry.crc32)
    throw new ZipProblem(`${entry.name}: CRC32 or size does not match`);
}
