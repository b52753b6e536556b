import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { printerValues, sameValue, type PrinterLike } from "./values.ts";

const base: PrinterLike = {
  name: "mk4-a",
  model: "MK4",
  cameraUrl: null,
  connection: "online",
  activity: "printing",
  temperatures: [
    { name: "bed", actual: 59.6, target: 60 },
    { name: "tool0", actual: 214.2, target: 215 },
    { name: "tool1", actual: 30, target: 0 },
  ],
  observedAt: 1_000_000,
  drivenBy: "here",
  job: {
    id: "j-1",
    file: { name: "clip.gcode" },
    owner: "ann",
    state: "printing",
    printer: "mk4-a",
    priority: 0,
    progress: 0.4567,
    remainingS: 420,
    startedAt: 1_000_000 - 90_000,
    finishedAt: null,
    createdAt: 0,
  },
  bedClear: false,
};

describe("the printer layout's values", () => {
  it("are the MES layout: Ferry's state, the first tool as the nozzle, progress in percent", () => {
    const values = printerValues(base, "http://10.0.0.5", 2_000_000);
    assert.deepEqual(values, {
      state: "printing",
      "bed/actual": 59.6,
      "bed/target": 60,
      "nozzle/actual": 214.2,
      "nozzle/target": 215,
      "job/file": "clip.gcode",
      "job/progress": 45.7,
      "job/time_used": 90,
      "job/time_left": 420,
      url: "http://10.0.0.5",
      camera_url: "",
      model: "MK4",
      update_time: new Date(1_000_000),
    });
  });

  it("say what is not known: offline, never seen, no job, no temperatures", () => {
    const offline = printerValues({ ...base, connection: "offline", temperatures: [], job: null }, "", 5);
    assert.equal(offline.state, "offline");
    assert.ok(Number.isNaN(offline["bed/actual"]) && Number.isNaN(offline["nozzle/target"]));
    assert.equal(offline["job/file"], "");
    assert.equal(offline["job/progress"], 0);
    const unseen = printerValues({ ...base, connection: null, activity: null, observedAt: null }, "", 5);
    assert.equal(unseen.state, "unknown");
    assert.deepEqual(unseen.update_time, new Date(5));
  });

  it("compare NaN and dates by value", () => {
    assert.ok(sameValue(Number.NaN, Number.NaN));
    assert.ok(sameValue(new Date(3), new Date(3)));
    assert.ok(!sameValue(new Date(3), 3));
    assert.ok(!sameValue(undefined, ""));
    assert.ok(sameValue("idle", "idle"));
  });
});
