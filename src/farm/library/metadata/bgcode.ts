/**
 * Metadata of a Prusa binary G-code (.bgcode, libbgcode's doc/specifications.md): a 10-byte file
 * header ("GCDE", version 1, checksum type none|CRC32), then blocks in order: file metadata,
 * printer metadata, thumbnails, print metadata, slicer metadata, G-code. Each block is a header
 * (type, compression, uncompressed size, and the compressed size when compressed), parameters
 * (encoding; a thumbnail's format, width, height), data, and a CRC32 of all of these. Metadata is
 * INI text ("key=value" lines). Only the blocks before the first G-code block are read, each at
 * most MAX_BLOCK_BYTES: memory stays bounded. Deflate (zlib) is read; heatshrink is not (noted).
 */
import { crc32, inflateSync } from "node:zlib";
import { addPrintFacts, hasFacts } from "./gcode.ts";
import { checkedThumbnail } from "./images.ts";
import type { ByteSource, MetadataResult, PrintMetadata, Thumbnail, ThumbnailFormat } from "./types.ts";

const MAGIC = "GCDE";
const VERSION = 1;
const FILE_HEADER_BYTES = 10;
/** A metadata or thumbnail block larger than this is skipped with a note. */
export const MAX_BLOCK_BYTES = 8 << 20;

export const BLOCK_TYPES = [
  "file metadata",
  "G-code",
  "slicer metadata",
  "printer metadata",
  "print metadata",
  "thumbnail",
] as const;
export const GCODE_BLOCK = 1;
export const THUMBNAIL_BLOCK = 5;
const COMPRESSIONS = ["none", "deflate", "heatshrink 11/4", "heatshrink 12/4"] as const;
const IMAGE_FORMATS: readonly ThumbnailFormat[] = ["png", "jpg", "qoi"];

type Sections = Partial<
  Record<"file metadata" | "printer metadata" | "print metadata" | "slicer metadata", Map<string, string>>
>;

export async function readBgcodeMetadata(source: ByteSource): Promise<MetadataResult> {
  const noMetadata = (reason: string, thumbnails: Thumbnail[] = []): MetadataResult => ({
    metadata: null,
    reason,
    thumbnails,
  });
  if (source.size === 0) return noMetadata("empty file");
  const header = await source.read(0, FILE_HEADER_BYTES);
  if (header.length < 4 || header.toString("latin1", 0, 4) !== MAGIC) {
    const text = /^[;GMT\s]/.test(header.toString("latin1", 0, 1));
    return noMetadata(
      `not a binary G-code: no "GCDE" at its start${text ? " (it starts like G-code text)" : ""}`,
    );
  }
  if (header.length < FILE_HEADER_BYTES)
    return noMetadata(`truncated: ${source.size} bytes, the file header alone is 10`);
  const version = header.readUInt32LE(4);
  if (version !== VERSION)
    return noMetadata(`binary G-code version ${version}, only version ${VERSION} is read`);
  const checksumType = header.readUInt16LE(8);
  if (checksumType > 1) return noMetadata(`unknown checksum type ${checksumType} in the file header`);
  const checksumBytes = checksumType === 1 ? 4 : 0;

  const notes: string[] = [];
  const sections: Sections = {};
  const thumbnails: Thumbnail[] = [];
  let offset = FILE_HEADER_BYTES;
  let sawGcode = false;
  while (offset < source.size) {
    const at = `block at byte ${offset}`;
    const head = await source.read(offset, 12);
    if (head.length < 8) {
      notes.push(`${at}: truncated block header`);
      break;
    }
    const type = head.readUInt16LE(0);
    const compression = head.readUInt16LE(2);
    const uncompressed = head.readUInt32LE(4);
    const name = BLOCK_TYPES[type];
    if (name === undefined || COMPRESSIONS[compression] === undefined) {
      notes.push(
        `${at}: unknown ${name === undefined ? `block type ${type}` : `compression ${compression}`}, the rest is not read`,
      );
      break;
    }
    if (type === GCODE_BLOCK) {
      sawGcode = true;
      break; // metadata and thumbnails come before the G-code
    }
    if (compression !== 0 && head.length < 12) {
      notes.push(`${at}: truncated block header`);
      break;
    }
    const headerBytes = compression === 0 ? 8 : 12;
    const dataBytes = compression === 0 ? uncompressed : head.readUInt32LE(8);
    const paramBytes = type === THUMBNAIL_BLOCK ? 6 : 2;
    const blockBytes = headerBytes + paramBytes + dataBytes + checksumBytes;
    if (offset + blockBytes > source.size) {
      notes.push(
        `${name} (${at}): truncated, the file ends ${offset + blockBytes - source.size} bytes early`,
      );
      break;
    }
    const next = offset + blockBytes;
    if (dataBytes > MAX_BLOCK_BYTES || uncompressed > MAX_BLOCK_BYTES) {
      notes.push(
        `${name}: ${Math.max(dataBytes, uncompressed)} bytes, larger than ${MAX_BLOCK_BYTES}, not read`,
      );
      offset = next;
      continue;
    }
    const block = await source.read(offset, blockBytes);
    offset = next;
    if (checksumType === 1) {
      const stored = block.readUInt32LE(blockBytes - 4);
      if (crc32(block.subarray(0, blockBytes - 4)) !== stored) {
        notes.push(`${name}: CRC32 does not match, not read`);
        continue;
      }
    }
    const params = block.subarray(headerBytes, headerBytes + paramBytes);
    const data = unpack(
      block.subarray(headerBytes + paramBytes, headerBytes + paramBytes + dataBytes),
      compression,
      uncompressed,
      name,
      notes,
    );
    if (!data) continue;
    if (type === THUMBNAIL_BLOCK) {
      const format = IMAGE_FORMATS[params.readUInt16LE(0)];
      if (!format) {
        notes.push(`thumbnail: unknown image format ${params.readUInt16LE(0)}, skipped`);
        continue;
      }
      const thumbnail = checkedThumbnail(
        { format, width: params.readUInt16LE(2), height: params.readUInt16LE(4) },
        data,
        "thumbnail",
        notes,
      );
      if (thumbnail) thumbnails.push(thumbnail);
      continue;
    }
    const encoding = params.readUInt16LE(0);
    if (encoding !== 0) {
      notes.push(`${name}: encoding ${encoding} is not INI, not read`);
      continue;
    }
    sections[name as keyof Sections] = parseIni(data.toString("utf8"));
  }
  if (!sawGcode && offset >= source.size) notes.push("no G-code block: the file ends after its metadata");

  const metadata: PrintMetadata = { notes };
  const producer = sections["file metadata"]?.get("producer");
  if (producer) {
    const [slicer, ...version] = producer.trim().split(/\s+/);
    if (slicer) metadata.slicer = slicer;
    if (version.length > 0) metadata.slicerVersion = version.join(" ");
  }
  // Print metadata first (its totals), then the printer's, then the slicer's full config.
  const values = new Map<string, string>();
  for (const section of [
    sections["print metadata"],
    sections["printer metadata"],
    sections["slicer metadata"],
  ]) {
    for (const [key, value] of section ?? []) if (!values.has(key)) values.set(key, value);
  }
  addPrintFacts(metadata, values, [...values].map(([key, value]) => `${key}=${value}`).join("\n"));
  if (!hasFacts(metadata)) {
    const why = notes.length > 0 ? notes.join("; ") : "its metadata blocks hold no print facts";
    return noMetadata(`no metadata read: ${why}`, thumbnails);
  }
  return { metadata, thumbnails };
}

function unpack(
  data: Buffer,
  compression: number,
  uncompressed: number,
  name: string,
  notes: string[],
): Buffer | undefined {
  if (compression === 0) return data;
  if (compression !== 1) {
    notes.push(`${name}: compressed with heatshrink, not read`);
    return undefined;
  }
  try {
    const out = inflateSync(data, { maxOutputLength: MAX_BLOCK_BYTES });
    if (out.length !== uncompressed) {
      notes.push(`${name}: inflates to ${out.length} bytes where the header says ${uncompressed}, not read`);
      return undefined;
    }
    return out;
  } catch (error) {
    notes.push(`${name}: deflate data does not inflate (${(error as Error).message}), not read`);
    return undefined;
  }
}

/** libbgcode's INI encoding: "key=value" lines; keys are compared in lower case. */
function parseIni(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    if (!values.has(key)) values.set(key, line.slice(eq + 1).trim());
  }
  return values;
}
