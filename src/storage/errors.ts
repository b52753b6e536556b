/** Errors of the StorageAdapter contract itself, worded alike by every adapter. */
import { FerryError } from "../core/errors.ts";

/** The stream given to `write` carried more or fewer bytes than announced; the source may have changed. */
export function sizeMismatch(storage: string, path: string, expected: number, got: string): FerryError {
  return new FerryError(
    "PROTOCOL",
    `${storage}: ${path}: expected ${expected} bytes, the source gave ${got}`,
    {
      subject: path,
      retryable: true,
    },
  );
}
