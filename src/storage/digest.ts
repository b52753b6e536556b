/** The SHA-256 of a stream's bytes, hex: what adapters that hash by reading return from `hash()`. */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

export async function sha256Of(stream: Readable, signal?: AbortSignal): Promise<string> {
  const digest = createHash("sha256");
  await pipeline(stream, digest, signal ? { signal } : {});
  return digest.digest("hex");
}
