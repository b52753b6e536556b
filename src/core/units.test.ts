import assert from "node:assert/strict";
import { test } from "node:test";
import { formatBytes, formatDuration, parseSize } from "./units.ts";

test("parseSize reads decimal and binary units", () => {
  assert.equal(parseSize("512"), 512);
  assert.equal(parseSize("2MB"), 2_000_000);
  assert.equal(parseSize("1.5 kB"), 1500);
  assert.equal(parseSize("1MiB"), 1_048_576);
  assert.equal(parseSize("1MB/s"), 1_000_000);
  assert.throws(() => parseSize("fast", "--rate"), /--rate: "fast" is not a size/);
});

test("formatBytes and formatDuration are short and readable", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(138.381), "138 B", "a rate of a few bytes a second");
  assert.equal(formatBytes(2_000_000), "2.0 MB");
  assert.equal(formatBytes(123_456_789), "123 MB");
  assert.equal(formatDuration(3.25), "3.3s");
  assert.equal(formatDuration(75), "1m15s");
});
