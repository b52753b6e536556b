import assert from "node:assert/strict";
import { test } from "node:test";
import { estimatedSeconds } from "./gcode.ts";

test("the estimate as each slicer writes it, the normal-mode comment first", () => {
  assert.equal(estimatedSeconds("; estimated printing time (normal mode) = 1h 2m 3s\n"), 3723); // PrusaSlicer
  assert.equal(estimatedSeconds("estimated printing time (normal mode)=9m 1s\n"), 541); // .bgcode metadata
  assert.equal(estimatedSeconds("; model printing time: 1h 2m 3s; total estimated time: 1h 5m 3s\n"), 3903); // OrcaSlicer
  assert.equal(estimatedSeconds(";FLAVOR:Marlin\n;TIME:6666\n"), 6666); // Cura
  assert.equal(estimatedSeconds("M73 P0 R62\nM73 P50 R31\n"), 3720);
  assert.equal(
    estimatedSeconds(";TIME:10\nM73 P0 R62\n; estimated printing time (normal mode) = 2m\n"),
    120,
    "the slicer's own comment wins over ;TIME: and M73",
  );
  assert.equal(estimatedSeconds("; estimated printing time (normal mode) = n/a\nG28\n"), undefined);
});
