/**
 * The OctoPrint driver against the simulator over real HTTP: snapshots in every OctoPrint state,
 * a print's progress on a clock the test moves, print control, and a printer that goes away.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { OCTOPRINT_STATES, OctoPrintSim, type OctoPrintState } from "../../sim/octoprint/index.ts";
import type { Activity, JobSnapshot, PrinterSnapshot } from "../driver.ts";
import { activityOf, openOctoPrintDriver, type OctoPrintDriver } from "./driver.ts";

const KEY = "driver-key";
const context = { name: "octo-1", logger: silentLogger, baseDir: "/" };
const gcode = (minutes: number) =>
  Buffer.from(`; estimated printing time (normal mode) = ${minutes}m 0s\nG28\nM104 S215\nM140 S60\n`);

function open(sim: OctoPrintSim, key = KEY): OctoPrintDriver {
  return openOctoPrintDriver({ url: sim.url, api_key: new Secret(key) }, context);
}

function jobOf(snapshot: PrinterSnapshot): JobSnapshot {
  assert.ok(snapshot.job, `a job in ${JSON.stringify(snapshot)}`);
  return snapshot.job;
}

async function rejectsWith(promise: Promise<unknown>, code: string, text?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isFerryError(error), `a FerryError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
    return true;
  });
}

void describe("octoprint driver", () => {
  let now = Date.UTC(2025, 5, 1, 12);
  let sim: OctoPrintSim;
  let driver: OctoPrintDriver;

  before(async () => {
    sim = await OctoPrintSim.start({ apiKey: KEY, clock: () => now });
    driver = open(sim);
    const storage = driver.storage();
    for (const path of ["Детали/.cfg/корпус.gcode", "benchy.gcode"]) {
      const data = gcode(10);
      await storage.write(path, Readable.from([data]), { size: data.length });
    }
  });
  after(async () => {
    await driver.close();
    await sim.close();
  });

  /** Unselects OctoPrint's file (its last print, if it failed, would make an idle printer "stopped"). */
  async function unselect(): Promise<void> {
    const res = await fetch(`${sim.url}/api/files/local/current`, {
      method: "POST",
      headers: { "X-Api-Key": KEY, "Content-Type": "application/json" },
      body: JSON.stringify({ command: "unselect" }),
    });
    assert.ok(res.status === 204 || res.status === 409, `unselect: ${res.status}`);
  }

  void test("an idle printer: online, idle, Operational, tool0 and bed at room temperature", async () => {
    const snap = await driver.snapshot();
    assert.equal(snap.connection, "online");
    assert.equal(snap.activity, "idle");
    assert.equal(snap.rawState, "Operational");
    assert.equal(snap.job, undefined);
    assert.deepEqual(
      snap.temperatures.map((t) => [t.name, t.actual, t.target]),
      [
        ["tool0", 24, 0],
        ["bed", 24, 0],
      ],
    );
  });

  void test("a job: started by path, printing with rising progress, then finished with its file", async () => {
    await driver.startJob("Детали/.cfg/корпус.gcode");
    const first = await driver.snapshot();
    assert.equal(first.activity, "printing");
    const started = jobOf(first);
    assert.equal(started.file, "Детали/.cfg/корпус.gcode", "the display path, not OctoPrint's on-disk one");
    assert.equal(started.id, undefined, "OctoPrint has no job ids");
    assert.equal(started.progress, 0);
    now += 4 * 60_000;
    const later = await driver.snapshot();
    const running = jobOf(later);
    const progress = running.progress ?? -1;
    assert.ok(progress > 0.39 && progress < 0.41, `progress ${progress}`);
    assert.equal(running.elapsedS, 240);
    assert.equal(running.remainingS, 360);
    assert.equal(running.startedAt, later.observedAt - 240_000);
    const tool = later.temperatures.find((t) => t.name === "tool0");
    assert.ok(tool, "a tool0 reading");
    assert.equal(tool.target, 215, "heating to the G-code's temperature");
    assert.ok(tool.actual > 200, `tool0 at ${tool.actual}`);
    await rejectsWith(driver.startJob("benchy.gcode"), "BUSY", /Printing/);
    now += 7 * 60_000;
    const done = await driver.snapshot();
    assert.equal(done.rawState, "Operational");
    assert.equal(done.activity, "finished");
    assert.equal(jobOf(done).progress, 1);
    assert.equal(jobOf(done).file, "Детали/.cfg/корпус.gcode");
  });

  void test("pause, resume and cancel; each is CONFLICT when nothing fits", async () => {
    await rejectsWith(driver.cancel(), "CONFLICT", /neither printing nor paused/);
    await rejectsWith(driver.pause(), "CONFLICT");
    await rejectsWith(driver.resume(), "CONFLICT");
    await driver.startJob("benchy.gcode");
    await driver.pause();
    assert.equal((await driver.snapshot()).activity, "paused");
    await rejectsWith(driver.pause(), "CONFLICT", /Paused/);
    await driver.resume();
    assert.equal((await driver.snapshot()).activity, "printing");
    await driver.cancel();
    const snap = await driver.snapshot();
    assert.equal(snap.rawState, "Operational");
    assert.equal(snap.activity, "stopped", "no progress, and the file's last print failed");
    assert.equal(jobOf(snap).file, "benchy.gcode");
  });

  void test("a print started at the printer shows with its file", async () => {
    sim.startPrint("benchy.gcode");
    const snap = await driver.snapshot();
    assert.equal(snap.activity, "printing");
    assert.equal(jobOf(snap).file, "benchy.gcode");
    await driver.cancel();
  });

  void test("every OctoPrint state word maps to an activity, and a printer without a link is offline", async () => {
    const expected: Record<OctoPrintState, [Activity, "online" | "offline"]> = {
      Offline: ["busy", "offline"],
      "Opening serial connection": ["busy", "offline"],
      "Detecting serial connection": ["busy", "offline"],
      Connecting: ["busy", "offline"],
      Operational: ["idle", "online"],
      Starting: ["printing", "online"],
      Printing: ["printing", "online"],
      Cancelling: ["busy", "online"],
      Pausing: ["paused", "online"],
      Paused: ["paused", "online"],
      Resuming: ["printing", "online"],
      Finishing: ["printing", "online"],
      Error: ["error", "online"],
      "Offline after error": ["error", "offline"],
      "Transferring file to SD": ["busy", "online"],
    };
    for (const state of OCTOPRINT_STATES) {
      sim.setState("Operational");
      if (
        ["Starting", "Printing", "Cancelling", "Pausing", "Paused", "Resuming", "Finishing"].includes(state)
      ) {
        sim.startPrint("benchy.gcode");
      }
      sim.setState(state);
      if (state === "Operational") await unselect();
      const snap = await driver.snapshot();
      assert.equal(snap.rawState, state);
      assert.deepEqual([snap.activity, snap.connection], expected[state], state);
      if (snap.connection === "offline")
        assert.match(snap.offlineReason ?? "", /not connected to its printer/);
    }
    sim.setState("Operational");
    assert.equal(activityOf("Printing from SD"), "printing");
    assert.equal(activityOf("Closed"), "busy");
    assert.equal(activityOf("Some plugin's state"), "busy", "an unknown word is never quiet");
  });

  void test("a lost serial port mid-job: offline with OctoPrint's error, the print lost; reconnected: idle", async () => {
    await driver.startJob("benchy.gcode");
    sim.setState("Offline after error");
    const away = await driver.snapshot();
    assert.equal(away.connection, "offline");
    assert.equal(away.rawState, "Offline after error");
    assert.match(away.offlineReason ?? "", /SerialException/);
    sim.setState("Operational");
    const back = await driver.snapshot();
    assert.equal(back.connection, "online");
    assert.equal(back.activity, "stopped", "OctoPrint lost the print it was streaming");
  });

  void test("the host off the network mid-job: offline; back: still printing", async () => {
    await driver.startJob("benchy.gcode");
    sim.disconnect();
    const away = await driver.snapshot();
    assert.equal(away.connection, "offline");
    assert.match(away.offlineReason ?? "", /connection lost|unreachable/);
    sim.reconnect();
    const back = await driver.snapshot();
    assert.equal(back.connection, "online");
    assert.equal(back.activity, "printing");
    await driver.cancel();
  });

  void test("a wrong API key is auth_failed, a server that is gone is offline; neither throws", async () => {
    const wrong = open(sim, "not-the-key");
    const refused = await wrong.snapshot();
    await wrong.close();
    assert.equal(refused.connection, "auth_failed");
    assert.match(refused.offlineReason ?? "", /403.*API key/);
    const other = await OctoPrintSim.start({ apiKey: KEY });
    const gone = open(other);
    await other.close();
    const snap = await gone.snapshot();
    await gone.close();
    assert.equal(snap.connection, "offline");
    assert.match(snap.offlineReason ?? "", /unreachable/);
  });

  void test("events(): a first snapshot, then a change when the printer starts", async () => {
    await unselect();
    const controller = new AbortController();
    const seen: string[] = [];
    const stream = driver.events({ intervalMs: 10, signal: controller.signal });
    for await (const event of stream) {
      seen.push(`${event.type}:${event.snapshot.activity}`);
      if (event.type === "snapshot") sim.startPrint("benchy.gcode");
      else controller.abort();
    }
    assert.deepEqual(seen, ["snapshot:idle", "change:printing"]);
    await driver.cancel();
  });
});
