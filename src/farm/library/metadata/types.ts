/**
 * What the library reads from a print file: the slicer's facts about the print and the pictures it
 * embedded. Every field is optional: a file tells what its slicer wrote, nothing is guessed.
 */

export const THUMBNAIL_FORMATS = ["png", "jpg", "qoi"] as const;
export type ThumbnailFormat = (typeof THUMBNAIL_FORMATS)[number];

export interface PrintMetadata {
  /** "PrusaSlicer", "SuperSlicer", "OrcaSlicer", "Cura", ... */
  slicer?: string;
  slicerVersion?: string;
  /** The printer model the file was sliced for (`printer_model`, e.g. "MINI", "MK4"). */
  printerModel?: string;
  /** The slicer's estimate of the print's duration, normal mode, in seconds. */
  estimatedTimeS?: number;
  /** Filament used over all extruders. */
  filamentUsedMm?: number;
  filamentUsedG?: number;
  /** Filament type(s) (`filament_type`), several joined by ", " ("PLA", "PLA, PETG"). */
  material?: string;
  nozzleDiameterMm?: number;
  layerHeightMm?: number;
  /** A 3MF project's title. */
  title?: string;
  /** Parts of the file that could not be read, each with why ("slicer metadata: compressed with heatshrink, not read"). */
  notes: string[];
}

export interface ThumbnailInfo {
  format: ThumbnailFormat;
  /** The size the file declares (G-code comment, .bgcode block parameters, or the image's own header in a 3MF). */
  width: number;
  height: number;
  /** Bytes of the image. */
  bytes: number;
}

export interface Thumbnail extends ThumbnailInfo {
  data: Buffer;
}

/**
 * A parser's answer. `metadata: null` is "no metadata", with the reason; the thumbnails found are
 * kept either way. Parsers never throw on what a file holds.
 */
export type MetadataResult =
  | { metadata: PrintMetadata; thumbnails: Thumbnail[] }
  | { metadata: null; reason: string; thumbnails: Thumbnail[] };

/** Random access to a file's bytes (a file on disk, or a buffer in tests). */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes from `offset`; fewer only at the end. */
  read(offset: number, length: number): Promise<Buffer>;
}

export function bufferSource(buffer: Buffer): ByteSource {
  return {
    size: buffer.length,
    read: (offset, length) =>
      Promise.resolve(buffer.subarray(offset, Math.min(buffer.length, offset + length))),
  };
}
