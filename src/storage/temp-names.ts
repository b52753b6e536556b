/**
 * Ferry's own temp files: a write goes to `.ferry-<16 hex>.part` beside its final name and is
 * renamed into place. Adapters hide these names from listings and refuse them as user names.
 */
import { randomBytes } from "node:crypto";

export const TEMP_NAME = /^\.ferry-[0-9a-f]{16}\.part$/;

/** A new temp name (a name, not a path). */
export const tempName = (): string => `.ferry-${randomBytes(8).toString("hex")}.part`;
