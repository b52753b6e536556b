import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EventBus } from "../core/events.ts";
import type { EngineEvents, TargetReport } from "../sync/events.ts";
import { attachSyncOutput, finishLine, liveBlock, oneLine, summaryTable, type Live } from "./sync-output.ts";

const target = (label: string, status: string, doneBytes = 0): Live => ({
  label,
  status,
  fileBytes: 0,
  fileSize: 0,
  doneBytes,
  totalBytes: 1_000_000,
  startedAt: performance.now(),
});

describe("the live block", () => {
  test("one line per target while they fit the terminal", () => {
    const lines = liveBlock([target("a", "sending"), target("b", "starting")], 100, 24);
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? "", /^a /);
  });

  test("a farm taller than the terminal shows the busiest targets and sums up the rest", () => {
    const farm = Array.from({ length: 100 }, (_, i) =>
      target(`p${String(i).padStart(3, "0")}`, i % 10 === 0 ? "sending" : "starting", 100_000),
    );
    const lines = liveBlock(farm, 100, 24);
    assert.equal(lines.length, 20, "rows minus room for the lines above");
    for (const line of lines) assert.ok(line.length < 100);
    // The ten sending targets come first, then waiting ones fill the block.
    assert.deepEqual(
      lines.slice(0, 10).map((l) => l.slice(0, 4)),
      ["p000", "p010", "p020", "p030", "p040", "p050", "p060", "p070", "p080", "p090"],
    );
    assert.equal(lines.at(-1), "… 81 more: 0 sending, 81 waiting, 8.1 MB/81 MB");
  });
});

describe("a target that failed", () => {
  const failed: TargetReport = {
    sync: "gcode",
    target: "mk4-a",
    outcome: "failed",
    reason:
      "mk4-a: HTTP 404: <html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1></body></html>",
    planned: 0,
    done: 0,
    failed: 0,
    skipped: 0,
    bytes: 0,
    seconds: 0.1,
    errors: [],
    notes: [],
    dryRun: false,
    actions: [],
  };

  test("is never shown as up to date, and says why in one short line without HTML", () => {
    const line = finishLine(failed);
    assert.doesNotMatch(line, /up to date/);
    assert.equal(line, "gcode → mk4-a: FAILED, mk4-a: HTTP 404: 404 Not Found Not Found");
    assert.match(summaryTable([failed]), /failed .* mk4-a: HTTP 404: 404 Not Found Not Found$/m);
  });

  test("up to date only when nothing was to do and nothing failed", () => {
    const { reason: _reason, ...done } = failed;
    assert.match(finishLine({ ...done, outcome: "done" }), /up to date/);
    assert.doesNotMatch(finishLine({ ...failed, outcome: "unreachable" }), /up to date/);
  });

  test("a long reason is cut", () => {
    assert.equal(oneLine("x".repeat(500)).length, 160);
  });
});

describe("plain output", () => {
  test("lines of many files go out in one write, in order, by the time the output is detached", () => {
    const bus = new EventBus<EngineEvents>();
    const writes: string[] = [];
    const out = { write: (text: string) => writes.push(text) } as unknown as NodeJS.WriteStream;
    const detach = attachSyncOutput(bus, "plain", out);
    for (let i = 0; i < 3; i++)
      bus.emit("task.done", {
        id: `t${i}`,
        kind: "sync.file",
        what: `send f${i}`,
        sync: "s",
        target: "t",
        bytes: 0,
        ms: 1,
      });
    assert.deepEqual(writes, [], "nothing written per file");
    detach();
    assert.equal(writes.length, 1, "one write");
    assert.match(
      writes.join(""),
      /^s → t: send f0 ok[^\n]*\ns → t: send f1 ok[^\n]*\ns → t: send f2 ok[^\n]*\n$/,
    );
  });
});
