/**
 * The Moonraker driver against the simulator over real HTTP and its websocket: changes pushed
 * (never polled), Klippy leaving and coming back, the job's history id and start, every heater,
 * a printer without an API key, and what Klipper lets pass that the contract refuses.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { MoonrakerSim } from "../../sim/moonraker/index.ts";
import type { PrinterEvent, PrinterSnapshot } from "../driver.ts";
import { activityOf, openMoonrakerDriver, temperaturesOf, type MoonrakerDriver } from "./driver.ts";

const KEY = "driver-key";
const context = { name: "klip-1", logger: silentLogger, baseDir: "/" };
const gcode = (minutes: number) =>
  Buffer.from(`; estimated printing time (normal mode) = ${minutes}m 0s\nG28\nM104 S215\nM140 S60\n`);

async function put(driver: MoonrakerDriver, path: string, minutes = 10): Promise<void> {
  const data = gcode(minutes);
  await driver.storage().write(path, Readable.from([data]), { size: data.length });
}

async function rejectsWith(promise: Promise<unknown>, code: string, text?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isFerryError(error), `a FerryError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
    return true;
  });
}

/** Reads a stream's events until one matches, failing (not hanging) after 20 s. */
class Events {
  readonly abort = new AbortController();
  readonly #events: AsyncIterator<PrinterEvent>;
  constructor(driver: MoonrakerDriver, intervalMs: number) {
    this.#events = driver.events({ signal: this.abort.signal, intervalMs })[Symbol.asyncIterator]();
  }
  async until(what: string, match: (snapshot: PrinterSnapshot) => boolean): Promise<PrinterEvent> {
    const deadline = setTimeout(() => this.abort.abort(), 20_000);
    try {
      for (;;) {
        const next = await this.#events.next();
        assert.equal(next.done, false, `the stream ended before ${what}`);
        if (match(next.value.snapshot)) return next.value;
      }
    } finally {
      clearTimeout(deadline);
    }
  }
  async end(): Promise<void> {
    this.abort.abort();
    await this.#events.return?.();
  }
}

void describe("moonraker driver", () => {
  let now = Date.UTC(2025, 5, 1, 12);
  let sim: MoonrakerSim;
  let driver: MoonrakerDriver;

  before(async () => {
    sim = await MoonrakerSim.start({ apiKey: KEY, clock: () => now, extruders: 2, chamber: true });
    driver = openMoonrakerDriver({ url: sim.url, api_key: new Secret(KEY) }, context, {}, () => now);
    await put(driver, "Детали/корпус.gcode");
    await put(driver, "benchy.gcode");
  });
  after(async () => {
    await driver.close();
    await sim.close();
  });

  test("every heater by the contract's names: both extruders, the bed, the chamber", async () => {
    const idle = await driver.snapshot();
    assert.deepEqual(
      idle.temperatures.map((t) => t.name),
      ["tool0", "tool1", "bed", "chamber"],
    );
    assert.equal(idle.rawState, "standby");
  });

  test("changes are pushed: a stream that would poll once a minute sees a print start at once", async () => {
    const events = new Events(driver, 60_000);
    try {
      const first = await events.until("the first snapshot", () => true);
      assert.equal(first.type, "snapshot");
      assert.equal(first.snapshot.activity, "idle");
      sim.startPrint("Детали/корпус.gcode");
      const printing = await events.until("printing", (s) => s.activity === "printing");
      assert.equal(printing.type, "change");
      assert.equal(printing.snapshot.job?.file, "Детали/корпус.gcode");
      now += 60_000;
      sim.printer.tick();
      const later = await events.until("progress", (s) => (s.job?.progress ?? 0) > 0.05);
      assert.ok(later.type === "change" && later.changed.includes("job"));
      sim.printer.cancel();
      await events.until("stopped", (s) => s.activity === "stopped");
    } finally {
      await events.end();
    }
  });

  test("Klippy leaving Moonraker is offline with its reason; back and ready, the stream subscribes again", async () => {
    sim.setState("disconnected");
    const gone = await driver.snapshot();
    assert.equal(gone.connection, "offline");
    assert.match(gone.offlineReason ?? "", /Klipper is not connected/);
    assert.deepEqual(gone.temperatures, []);
    const events = new Events(driver, 60_000);
    try {
      const first = await events.until("the first snapshot", () => true);
      assert.equal(first.snapshot.connection, "offline");
      sim.setState("standby");
      await events.until("online after notify_klippy_ready", (s) => s.connection === "online");
      sim.startPrint("benchy.gcode");
      // Only a new subscription reports this: the old one ended with Klippy.
      await events.until("printing", (s) => s.activity === "printing");
      sim.fail("MCU 'mcu' shutdown: Timer too close");
      const shutdown = await events.until("shutdown", (s) => s.activity === "error");
      assert.equal(shutdown.snapshot.rawState, "shutdown");
    } finally {
      await events.end();
    }
    sim.setState("standby");
  });

  test("the job's id and start come from Moonraker's history; a new print of the same file has a new id", async () => {
    sim.setState("standby");
    await driver.startJob("benchy.gcode");
    const first = await driver.snapshot();
    assert.equal(first.job?.startedAt, now);
    assert.match(first.job.id ?? "", /^[0-9A-F]{6}$/);
    assert.ok((first.job.remainingS ?? 0) > 590, `the slicer's estimate: ${first.job.remainingS}`);
    await driver.cancel();
    now += 5_000;
    await driver.startJob("benchy.gcode");
    const second = await driver.snapshot();
    assert.notEqual(second.job?.id, first.job.id);
    assert.equal(second.job?.startedAt, now);
    await driver.cancel();
  });

  test("what Klipper answers ok to is refused: pause, resume and cancel of nothing, a print over a print", async () => {
    sim.setState("standby");
    await rejectsWith(driver.pause(), "CONFLICT", /nothing is printing \(standby\)/);
    await rejectsWith(driver.resume(), "CONFLICT", /nothing is paused/);
    await rejectsWith(driver.cancel(), "CONFLICT", /no job runs/);
    await rejectsWith(driver.startJob("Детали"), "NOT_FOUND", /is a folder/);
    await rejectsWith(driver.startJob("missing.gcode"), "NOT_FOUND");
    sim.startPrint("benchy.gcode");
    await rejectsWith(driver.startJob("Детали/корпус.gcode"), "BUSY", /printer is printing/);
    sim.setState("startup");
    await rejectsWith(driver.pause(), "CONFLICT", /klippy startup/);
    sim.setState("standby");
  });

  test("a wrong key is auth_failed, in snapshots and in the stream", async () => {
    const wrong = openMoonrakerDriver({ url: sim.url, api_key: new Secret("nope") }, context);
    const events = new Events(wrong, 60_000);
    try {
      assert.equal((await wrong.snapshot()).connection, "auth_failed");
      const first = await events.until("the first snapshot", () => true);
      assert.equal(first.snapshot.connection, "auth_failed");
    } finally {
      await events.end();
      await wrong.close();
    }
  });

  test("a Moonraker that trusts every client needs no key", async () => {
    const open = await MoonrakerSim.start({ clock: () => now });
    const keyless = openMoonrakerDriver({ url: open.url }, context, {}, () => now);
    const events = new Events(keyless, 60_000);
    try {
      assert.equal((await keyless.snapshot()).activity, "idle");
      await events.until("the first snapshot", (s) => s.connection === "online");
    } finally {
      await events.end();
      await keyless.close();
      await open.close();
    }
  });

  test("activityOf: Klippy's states and print_stats", () => {
    const status = (state: string, extra: Record<string, Record<string, unknown>> = {}) => ({
      print_stats: { state },
      ...extra,
    });
    assert.equal(activityOf("ready", status("standby")), "idle");
    assert.equal(activityOf("ready", status("standby", { idle_timeout: { state: "Printing" } })), "busy");
    assert.equal(activityOf("ready", status("paused")), "paused");
    const runout = { "filament_motion_sensor encoder": { filament_detected: false, enabled: true } };
    assert.equal(activityOf("ready", status("paused", runout)), "attention");
    const disabled = { "filament_switch_sensor s": { filament_detected: false, enabled: false } };
    assert.equal(activityOf("ready", status("paused", disabled)), "paused");
    assert.equal(activityOf("ready", status("complete")), "finished");
    assert.equal(activityOf("ready", status("cancelled")), "stopped");
    assert.equal(activityOf("ready", status("error")), "error");
    assert.equal(activityOf("ready", status("something new")), "busy");
    assert.equal(activityOf("startup", {}), "busy");
    assert.equal(activityOf("shutdown", status("printing")), "error");
    assert.equal(activityOf("error", {}), "error");
    assert.deepEqual(
      temperaturesOf({
        extruder2: { temperature: 30, target: 0 },
        extruder: { temperature: 200.5, target: 210 },
        "temperature_sensor chamber": { temperature: 31 },
        heater_bed: { temperature: null, target: 60 },
      }),
      [
        { name: "tool0", actual: 200.5, target: 210 },
        { name: "tool2", actual: 30, target: 0 },
        { name: "chamber", actual: 31 },
      ],
    );
  });
});
