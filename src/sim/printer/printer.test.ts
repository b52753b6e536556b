import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SimStorage, VirtualPrinter, type SimFile } from "./index.ts";
import { parseDuration, readGcode } from "../../core/gcode.ts";

function rig(speed = 1) {
  const clock = { now: 1_700_000_000_000 };
  const storage = new SimStorage({ name: "gcodes", capacity: 1 << 20 }, clock.now / 1000);
  const printer = new VirtualPrinter({ storages: [storage], clock: () => clock.now, speed });
  const put = (name: string, text: string): SimFile =>
    storage.putFile(storage.root, name, Buffer.from(text), Buffer.byteLength(text), clock.now / 1000);
  return { clock, storage, printer, put };
}

const heat = (printer: VirtualPrinter, name: string) => printer.temperatures().find((t) => t.name === name);

void describe("G-code facts", () => {
  void test("PrusaSlicer's estimate comment, M73 lines, targets, or nothing", () => {
    assert.equal(parseDuration("1d 2h 3m 4s"), 93_784);
    assert.equal(parseDuration("n/a"), undefined);
    const sliced =
      "M104 S170\nM109 S215\nM190 S60\nG1 X1\n; estimated printing time (normal mode) = 1h 2m 3s\n";
    assert.deepEqual(readGcode(Buffer.from(sliced)), { estimatedS: 3723, toolTarget: 215, bedTarget: 60 });
    const bgcodeMeta = "\x00\x01estimated printing time (normal mode)=10m\x00";
    assert.equal(readGcode(Buffer.from(bgcodeMeta, "latin1")).estimatedS, 600);
    assert.equal(
      readGcode(Buffer.from("M73 P0 R62\nM73 Q0 S63\nG1\nM73 P50 R31\nM73 P100 R0\n")).estimatedS,
      3720,
    );
    assert.deepEqual(readGcode(Buffer.from("G28\n")), {});
    assert.deepEqual(readGcode(undefined), {});
  });
});

void describe("virtual printer", () => {
  void test("a print lasts its G-code's estimate divided by the speed; progress and times follow the clock", () => {
    const { clock, printer, storage, put } = rig(100);
    const file = put("part.gcode", "; estimated printing time (normal mode) = 10m 0s\n");
    const job = printer.startPrint(storage, file);
    assert.equal(printer.activity, "printing");
    clock.now += 3000;
    assert.deepEqual(printer.times(job), { progress: 0.5, elapsedMs: 3000, remainingMs: 3000 });
    printer.pause();
    clock.now += 60_000;
    assert.equal(printer.times(job).progress, 0.5, "no progress while paused");
    printer.resume();
    clock.now += 2999;
    assert.equal(printer.activity, "printing");
    clock.now += 1;
    assert.equal(printer.activity, "finished");
    assert.deepEqual(printer.times(job), { progress: 1, elapsedMs: 6000, remainingMs: 0 });
    assert.equal(job.state, "finished");
  });

  void test("a file without an estimate prints for the default; an explicit duration wins", () => {
    const { printer, storage, put } = rig();
    const job = printer.startPrint(storage, put("a.gcode", "G28\n"));
    assert.equal(job.estimateMs, 600_000);
    printer.cancel();
    assert.equal(printer.activity, "stopped");
    assert.equal(printer.startPrint(storage, put("b.gcode", "G28\n"), 30).estimateMs, 30_000);
  });

  void test("heaters approach their targets over time and cool down after the print", () => {
    const { clock, printer, storage, put } = rig();
    assert.deepEqual(heat(printer, "tool0"), { name: "tool0", actual: 24, target: 0 });
    printer.startPrint(storage, put("a.gcode", "M104 S250\nM140 S90\n"), 3600);
    assert.equal(heat(printer, "tool0")?.actual, 24, "cold at the start");
    clock.now += 40_000;
    const tool = heat(printer, "tool0")?.actual ?? 0;
    assert.ok(tool > 150 && tool < 250, `one time constant: ${tool}`);
    clock.now += 400_000;
    assert.deepEqual(heat(printer, "tool0"), { name: "tool0", actual: 250, target: 250 });
    assert.equal(heat(printer, "bed")?.target, 90);
    printer.cancel();
    assert.equal(heat(printer, "tool0")?.target, 0);
    clock.now += 10_000;
    assert.ok((heat(printer, "tool0")?.actual ?? 0) < 250, "cooling");
  });

  void test("runout asks for attention and holds the job until resumed; an error ends it", () => {
    const { clock, printer, storage, put } = rig();
    const job = printer.startPrint(storage, put("a.gcode", "G28\n"), 100);
    assert.throws(() => printer.resume(), /nothing is paused/);
    clock.now += 10_000;
    printer.runout();
    assert.equal(printer.activity, "attention");
    assert.equal(printer.message, "Filament runout");
    assert.ok(printer.isPrinted(job.file), "the file is still in use");
    clock.now += 500_000;
    assert.equal(printer.times(job).progress, 0.1);
    printer.resume();
    assert.equal(printer.activity, "printing");
    assert.equal(printer.message, undefined);
    printer.fail("Thermal runaway");
    assert.equal(printer.activity, "error");
    assert.equal(job.state, "error");
    assert.equal(printer.readyToPrint(), false);
    assert.throws(() => printer.cancel(), /no job/);
    printer.setActivity("idle");
    assert.equal(printer.job, undefined);
    assert.equal(printer.readyToPrint(), true);
  });

  void test("disconnect and reconnect; listeners hear of changes, a finish included", () => {
    const { clock, printer, storage, put } = rig();
    let heard = 0;
    const stop = printer.onChange(() => heard++);
    printer.disconnect();
    assert.equal(printer.connected, false);
    printer.reconnect();
    assert.equal(printer.connected, true);
    printer.startPrint(storage, put("a.gcode", "G28\n"), 1);
    const before = heard;
    clock.now += 1000;
    printer.tick();
    assert.equal(printer.activity, "finished");
    assert.equal(heard, before + 1);
    stop();
    printer.setActivity("idle");
    assert.equal(heard, before + 1);
  });

  void test("a speed change keeps the time already printed", () => {
    const { clock, printer, storage, put } = rig();
    const job = printer.startPrint(storage, put("a.gcode", "G28\n"), 100);
    clock.now += 50_000;
    printer.setSpeed(50);
    clock.now += 500;
    assert.equal(printer.times(job).progress, 0.75);
    assert.throws(() => printer.setSpeed(0), /positive/);
  });
});
