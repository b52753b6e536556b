import assert from "node:assert/strict";
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { test } from "node:test";
import { COLLECT_BYTES, spentBytes } from "./spent-buffers.ts";

/** Minor collections V8 reports while `run` runs (and its entries arrive). */
async function minorCollections(run: () => void): Promise<number> {
  const seen: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  run();
  // Entries are delivered on a later turn of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  const kind = (e: PerformanceEntry) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
  return seen.filter((e) => kind(e) === constants.NODE_PERFORMANCE_GC_MINOR).length;
}

test("a young-generation collection runs once every COLLECT_BYTES moved, not before", async () => {
  spentBytes(COLLECT_BYTES); // from a known point: the count starts over at each collection
  const counted = await minorCollections(() => {
    for (let i = 0; i < 4; i++) spentBytes(COLLECT_BYTES / 4);
  });
  assert.ok(counted >= 1, "the collection ran");
  const many = await minorCollections(() => {
    for (let i = 0; i < 3; i++) spentBytes(COLLECT_BYTES);
  });
  assert.ok(many >= 3, `three collections for three times the bytes (saw ${many})`);
});
