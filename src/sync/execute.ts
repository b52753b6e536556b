/**
 * Carries out one planned action between a source and a target adapter; returns the bytes sent
 * and, for an upload, the stored file as the target shows it.
 */
import { FerryError } from "../core/errors.ts";
import type { Entry, StorageAdapter } from "../storage/adapter.ts";
import type { Action } from "./plan.ts";
import { sendFile } from "./transfer.ts";

export interface ExecuteOptions {
  signal?: AbortSignal;
  onStart?: () => void;
  onProgress?: (bytes: number) => void;
}

export async function executeAction(
  action: Action,
  source: StorageAdapter,
  target: StorageAdapter,
  options: ExecuteOptions = {},
): Promise<{ bytes: number; stored?: Entry }> {
  const opts = options.signal ? { signal: options.signal } : {};
  options.onStart?.();
  switch (action.type) {
    case "upload":
      return {
        bytes: action.size,
        stored: await sendFile(source, target, action, {
          ...opts,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
      };
    case "delete":
    case "rmdir":
      await target.remove(action.path, opts);
      return { bytes: 0 };
    default:
      throw new FerryError("PROTOCOL", `cannot execute a ${action.type} action`);
  }
}
