/** The simulator's /_sim/ control API over HTTP: its own routes and the ones every face shares. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MoonrakerSim } from "./index.ts";

void describe("moonraker simulator control API", () => {
  let sim: MoonrakerSim;
  before(async () => {
    sim = await MoonrakerSim.start({});
    const form = new FormData();
    form.append("file", new Blob(["G28\n"]), "part.gcode");
    assert.equal((await fetch(`${sim.url}/server/files/upload`, { method: "POST", body: form })).status, 201);
  });
  after(() => sim.close());

  const control = (method: string, route: string, json?: unknown) =>
    fetch(`${sim.url}/_sim/${route}`, {
      method,
      ...(json === undefined
        ? {}
        : { headers: { "Content-Type": "application/json" }, body: JSON.stringify(json) }),
    });
  const state = async () => (await (await control("GET", "state")).json()) as Record<string, unknown>;

  test("state words, a print at the printer, a runout, an error, Klippy leaving", async () => {
    assert.equal((await control("POST", "print", { path: "part.gcode" })).status, 204);
    assert.equal((await state()).print_stats_state, "printing");
    assert.equal((await control("POST", "runout")).status, 204);
    assert.equal((await state()).activity, "attention");
    assert.equal(
      (await control("POST", "error", { message: "Heater extruder not heating at expected rate" })).status,
      204,
    );
    assert.deepEqual(
      [(await state()).klippy_state, (await state()).print_stats_state],
      ["shutdown", "error"],
    );
    assert.equal((await control("PUT", "state", { state: "disconnected" })).status, 204);
    const info = await fetch(`${sim.url}/server/info`);
    assert.equal(
      ((await info.json()) as { result: { klippy_state: string } }).result.klippy_state,
      "disconnected",
    );
    assert.equal((await fetch(`${sim.url}/printer/info`)).status, 503, "Klippy Host not connected");
    assert.equal((await control("PUT", "state", { state: "standby" })).status, 204);
    assert.equal((await state()).klippy_state, "ready");
    assert.equal((await control("PUT", "state", { state: "nope" })).status, 400);
    assert.equal((await control("POST", "nothing")).status, 404);
  });

  test("faults and disconnects of the shared routes", async () => {
    assert.equal((await control("POST", "faults", { status: 503, count: 1 })).status, 204);
    assert.equal((await fetch(`${sim.url}/server/info`)).status, 503);
    assert.equal((await fetch(`${sim.url}/server/info`)).status, 200, "one fault only");
    assert.equal((await control("POST", "disconnect")).status, 204);
    await assert.rejects(fetch(`${sim.url}/server/info`), "the host is off the network");
    assert.equal((await control("DELETE", "disconnect")).status, 204);
    assert.equal((await fetch(`${sim.url}/server/info`)).status, 200);
    assert.equal((await control("PUT", "speed", { speed: 100 })).status, 204);
    assert.equal((await state()).speed, 100);
  });
});
