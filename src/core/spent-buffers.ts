/**
 * Frees spent transfer buffers on a schedule of bytes rather than of V8's heuristics. A fast
 * transfer allocates its chunks outside the JavaScript heap (1 MiB source reads, protocol packets),
 * and V8 frees them only at a collection of the small objects that hold them, which it starts by
 * the heap's own allocation (little during a transfer) or once the dead buffers pass tens of MB:
 * a 1 GiB upload's RSS then swung by 100 MB from run to run. A young-generation collection every
 * COLLECT_BYTES moved costs 0.1-0.4 ms and keeps the spent buffers near that amount (a protocol
 * that copies each chunk into packets makes a few times that).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Bytes moved between two collections. */
export const COLLECT_BYTES = 8 * 1024 * 1024;

type Collect = (options: { type: "minor" | "major"; execution: "sync" }) => void;

let collect: Collect | undefined;
let moved = 0;

function collector(): Collect {
  if (collect) return collect;
  const exposed = (globalThis as { gc?: Collect }).gc;
  if (exposed) return (collect = exposed);
  // The collector is exposed in a fresh context only, so the program's own globals do not change.
  setFlagsFromString("--expose-gc");
  return (collect = runInNewContext("gc") as Collect);
}

/** Counts `bytes` that went through a transfer; collects the young generation every COLLECT_BYTES. */
export function spentBytes(bytes: number): void {
  moved += bytes;
  if (moved < COLLECT_BYTES) return;
  moved = 0;
  collector()({ type: "minor", execution: "sync" });
}
