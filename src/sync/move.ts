/**
 * The last step of a move: the source file is deleted only once every target holds a verified copy
 * (same size; same hash where both sides can compute one) and the source has not changed since.
 */
import { FerryError, isFerryError } from "../core/errors.ts";
import type { HashKind, StorageAdapter } from "../storage/adapter.ts";
import { conflictName } from "./plan.ts";

export interface MoveCopy {
  target: StorageAdapter;
  /** Path of the copy on the target. */
  path: string;
  /** The target cannot be read back (write-only): the recorded delivery is the only evidence. */
  trustDelivery?: boolean;
}

export interface MovedFile {
  path: string;
  size: number;
  modTime?: number;
}

/** A target holds no copy yet: the upload that delivers it asks for this step again. */
export class CopyMissing extends FerryError {
  constructor(target: string, path: string) {
    super("PROTOCOL", `${target}: ${path} is not there yet; the source is kept`, {
      subject: path,
      retryable: false,
    });
  }
}

/** Throws (and deletes nothing) unless every copy checks out; then removes the source file. */
export async function finishMove(
  source: StorageAdapter,
  file: MovedFile,
  copies: readonly MoveCopy[],
  signal?: AbortSignal,
): Promise<void> {
  const opts = signal ? { signal } : {};
  const current = await source.stat(file.path, opts);
  if (current.size !== file.size || (file.modTime !== undefined && current.modTime !== file.modTime)) {
    throw new FerryError(
      "BUSY",
      `${source.name}: ${file.path} changed after it was sent; it is sent again first`,
      {
        subject: file.path,
        retryable: false,
      },
    );
  }
  for (const copy of copies) {
    if (copy.trustDelivery) continue;
    // The copy is under its own name or, where a different file held that name, under "name (n)".
    let problem: FerryError | undefined;
    for (let n = 0; ; n++) {
      const path = n === 0 ? copy.path : conflictName(copy.path, n);
      problem = await verifyCopy(source, file, copy.target, path, opts);
      if (!problem || problem instanceof CopyMissing) break;
    }
    // A different file under the name and no "(n)" copy yet: the copy is missing, not wrong.
    if (problem) throw problem;
  }
  await source.remove(file.path, opts);
}

/** Why the copy at `path` is not a verified copy of the file, or undefined when it is. */
async function verifyCopy(
  source: StorageAdapter,
  file: MovedFile,
  target: StorageAdapter,
  path: string,
  opts: { signal?: AbortSignal },
): Promise<FerryError | undefined> {
  const stored = await target.stat(path, opts).catch((error: unknown) => {
    if (isFerryError(error, "NOT_FOUND")) return undefined;
    throw error;
  });
  if (!stored) return new CopyMissing(target.name, path);
  if (stored.size !== file.size) {
    return new FerryError(
      "PROTOCOL",
      `${target.name}: ${path} holds ${stored.size ?? "no"} bytes, ${file.size} expected; the source is kept`,
      { subject: file.path, retryable: false },
    );
  }
  const kind = commonHash(source, target);
  if (kind && source.hash && target.hash) {
    const [a, b] = await Promise.all([source.hash(file.path, kind, opts), target.hash(path, kind, opts)]);
    if (a !== b) {
      return new FerryError(
        "PROTOCOL",
        `${target.name}: ${path} differs from the source (${kind}); the source is kept`,
        {
          subject: file.path,
          retryable: false,
        },
      );
    }
  }
  return undefined;
}

function commonHash(a: StorageAdapter, b: StorageAdapter): HashKind | undefined {
  return a.capabilities.hashes.find((kind) => b.capabilities.hashes.includes(kind));
}
