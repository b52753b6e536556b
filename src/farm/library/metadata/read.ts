/**
 * One entry point for every kind of print file: the right parser, and a promise that whatever the
 * file holds (truncated, garbage, a different format under the name) the answer is metadata or
 * "no metadata" with the reason, never an exception. Only an unreadable disk throws.
 */
import { readBgcodeMetadata } from "./bgcode.ts";
import { readGcodeMetadata } from "./gcode.ts";
import { readThreeMfMetadata } from "./three-mf.ts";
import type { ByteSource, MetadataResult } from "./types.ts";

export const LIBRARY_FILE_KINDS = ["gcode", "bgcode", "3mf"] as const;
export type LibraryFileKind = (typeof LIBRARY_FILE_KINDS)[number];

/** The kind a file name says, or undefined for a name the library does not take. */
export function kindOfName(name: string): LibraryFileKind | undefined {
  const extension = /\.([^./\\]+)$/.exec(name)?.[1]?.toLowerCase();
  if (extension === "gcode" || extension === "gco" || extension === "gc" || extension === "g") return "gcode";
  if (extension === "bgcode" || extension === "bgc") return "bgcode";
  if (extension === "3mf") return "3mf";
  return undefined;
}

const PARSERS: Record<LibraryFileKind, (source: ByteSource) => Promise<MetadataResult>> = {
  gcode: readGcodeMetadata,
  bgcode: readBgcodeMetadata,
  "3mf": readThreeMfMetadata,
};

export async function readMetadata(kind: LibraryFileKind, source: ByteSource): Promise<MetadataResult> {
  try {
    return await PARSERS[kind](source);
  } catch (error) {
    if (isIoError(error)) throw error;
    // A parser's own slip on a strange file: the file is still kept, with the reason.
    return { metadata: null, reason: `could not be read: ${(error as Error).message}`, thumbnails: [] };
  }
}

function isIoError(error: unknown): boolean {
  return (
    typeof (error as NodeJS.ErrnoException | undefined)?.code === "string" &&
    (error as NodeJS.ErrnoException).syscall !== undefined
  );
}
