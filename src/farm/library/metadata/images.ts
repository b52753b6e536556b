/**
 * The format and size an embedded picture says of itself, from its first bytes: PNG (IHDR), QOI
 * (its 14-byte header), JPEG (the first start-of-frame segment). A thumbnail whose bytes are not
 * the picture its file declares is dropped with a note rather than handed to a browser.
 */
import type { Thumbnail, ThumbnailFormat } from "./types.ts";

export interface ImageHeader {
  format: ThumbnailFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function imageHeader(data: Buffer): ImageHeader | undefined {
  if (
    data.length >= 24 &&
    data.subarray(0, 8).equals(PNG_SIGNATURE) &&
    data.toString("latin1", 12, 16) === "IHDR"
  ) {
    return { format: "png", width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
  }
  if (data.length >= 14 && data.toString("latin1", 0, 4) === "qoif") {
    return { format: "qoi", width: data.readUInt32BE(4), height: data.readUInt32BE(8) };
  }
  if (data.length >= 4 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return jpegHeader(data);
  return undefined;
}

/** Start-of-frame markers (C0-CF but DHT C4, JPG C8, DAC CC) carry the frame's height and width. */
const isStartOfFrame = (marker: number) =>
  marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

function jpegHeader(data: Buffer): ImageHeader | undefined {
  let at = 2;
  while (at + 4 <= data.length) {
    if (data[at] !== 0xff) return undefined;
    const marker = data[at + 1] ?? 0;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    const length = data.readUInt16BE(at + 2);
    if (isStartOfFrame(marker)) {
      if (at + 9 > data.length) return undefined;
      return { format: "jpg", height: data.readUInt16BE(at + 5), width: data.readUInt16BE(at + 7) };
    }
    if (length < 2) return undefined;
    at += 2 + length;
  }
  return undefined;
}

/**
 * A thumbnail checked against what its file declares: its bytes must be a picture of the declared
 * format; a size that differs from the declared one is taken from the picture, with a note.
 */
export function checkedThumbnail(
  declared: { format: ThumbnailFormat; width: number; height: number },
  data: Buffer,
  where: string,
  notes: string[],
): Thumbnail | undefined {
  const header = imageHeader(data);
  const label = `${where} ${declared.width}x${declared.height}`;
  if (!header || header.format !== declared.format) {
    notes.push(`${label}: not a ${declared.format.toUpperCase()} image, skipped`);
    return undefined;
  }
  if (header.width !== declared.width || header.height !== declared.height) {
    notes.push(`${label}: the image is ${header.width}x${header.height}`);
  }
  return { format: header.format, width: header.width, height: header.height, bytes: data.length, data };
}
