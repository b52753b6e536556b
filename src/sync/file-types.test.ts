/** A printer takes G-code only: other files are reported once as not accepted, never sent. */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { EventBus } from "../core/events.ts";
import type { EngineEvents } from "./events.ts";
import { runSync } from "./run.ts";
import { printerFixture } from "./test-support.ts";

test("a file the printer does not take is reported as not accepted, once, and not attempted", async () => {
  const farm = await printerFixture(["all: { source: ./master, targets: [p], mode: mirror }"]);
  try {
    await mkdir(join(farm.dir, "master"));
    await writeFile(join(farm.dir, "master", "part.gcode"), "G28\n");
    await writeFile(join(farm.dir, "master", "notes.txt"), "hello");
    for (let run = 1; run <= 2; run++) {
      const bus = new EventBus<EngineEvents>();
      const failures: string[] = [];
      bus.on("task.failed", ({ payload: e }) => failures.push(`${e.path ?? ""}: ${e.error}`));
      const [report] = await runSync(farm.sync("all"), farm.devices, { bus, attempts: 5 });
      assert.ok(report);
      assert.deepEqual(failures, [], `run ${run}: nothing is attempted and fails`);
      assert.equal(report.failed, 1, `run ${run}`);
      assert.deepEqual(
        report.errors.map((e) => [e.path, e.code]),
        [["notes.txt", "NAME_INVALID"]],
      );
      assert.match(report.errors[0]?.message ?? "", /not accepted by the target, which takes only \.gcode/);
      assert.equal(report.done, run === 1 ? 1 : 0);
    }
    assert.deepEqual(
      farm.sim.files().map((f) => f.path),
      ["part.gcode"],
    );
  } finally {
    await farm.close();
  }
});
