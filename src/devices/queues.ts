/**
 * The task queues of a device: work on a device is serialized on its queues (at most one running
 * task per queue), so the number of a device's queues is the number of its transfers at once.
 * `to:<device>#<slot>` holds work that writes to it, `from:<device>` work that reads it as a source.
 * While a device is away, all its queues pause.
 */
import { createHash } from "node:crypto";

/** At most this many transfers at once on one device, whatever it allows (the rest waits in the queue). */
export const MAX_SLOTS = 8;

/**
 * The queue of a write to `device`: a device taking one transfer at a time (a printer) has one;
 * others spread files over `slots` queues by path.
 */
export function targetQueue(device: string, slots: number, path: string): string {
  if (slots <= 1) return `to:${device}#0`;
  const slot = createHash("sha1").update(path.normalize("NFC")).digest().readUInt32BE(0) % slots;
  return `to:${device}#${slot}`;
}

export function sourceQueue(device: string): string {
  return `from:${device}`;
}

/** Every queue a device may have. */
export function deviceQueues(device: string): string[] {
  return [...Array.from({ length: MAX_SLOTS }, (_, i) => `to:${device}#${i}`), sourceQueue(device)];
}
