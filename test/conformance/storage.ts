/**
 * The shared StorageAdapter conformance suite. Every adapter runs it against a real server or a
 * faithful simulator, from a test file of a few lines next to the adapter.
 */
import type { StorageAdapter } from "../../src/storage/adapter.ts";

export interface StorageHarness {
  /**
   * Opens an adapter on the storage under test. The storage is empty before the first call; every
   * call returns a new instance over the same storage (used for persistence and resume checks).
   */
  open(): Promise<StorageAdapter>;
  /** Called once after the suite. */
  cleanup?(): Promise<void>;
  /** Bytes of the "large" round trip (default 1 MiB). */
  largeSize?: number;
}

export function describeStorageConformance(_label: string, _harness: StorageHarness): void {
  throw new Error("not written yet");
}
