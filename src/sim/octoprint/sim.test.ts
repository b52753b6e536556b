/**
 * What the OctoPrint simulator does, over real HTTP with real multipart bodies (fetch's FormData):
 * its API key check, its refusals and their texts, names as OctoPrint sanitizes them, uploads at
 * once, and the printer behind it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { waitFor } from "../../../test/support/wait.ts";
import { OctoPrintSim } from "./index.ts";
import { sanitizeName } from "./names.ts";

const KEY = "sim-key";

void describe("OctoPrint simulator", () => {
  let sim: OctoPrintSim;
  before(async () => {
    sim = await OctoPrintSim.start({ apiKey: KEY });
  });
  after(() => sim.close());

  const request = (path: string, init: RequestInit = {}) =>
    fetch(sim.url + path, {
      ...init,
      headers: { "X-Api-Key": KEY, ...(init.headers as Record<string, string>) },
    });
  const json = (path: string, body: unknown) =>
    request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  async function upload(name: string, content: string, fields: Record<string, string> = {}, key = KEY) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append("file", new Blob([content]), name);
    return fetch(`${sim.url}/api/files/local`, { method: "POST", headers: { "X-Api-Key": key }, body: form });
  }
  const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error;

  void test("the API key: header, Bearer and ?apikey= work; none or a wrong one is 403 everywhere", async () => {
    assert.equal((await fetch(`${sim.url}/api/version`, { headers: { "X-Api-Key": KEY } })).status, 200);
    assert.equal(
      (await fetch(`${sim.url}/api/version`, { headers: { Authorization: `Bearer ${KEY}` } })).status,
      200,
    );
    assert.equal((await fetch(`${sim.url}/api/version?apikey=${KEY}`)).status, 200);
    for (const path of ["/api/version", "/api/job", "/api/files/local", "/api/printer"]) {
      const none = await fetch(sim.url + path);
      assert.equal(none.status, 403, path);
      assert.match(await errorOf(none), /permission/);
      assert.equal((await fetch(sim.url + path, { headers: { "X-Api-Key": "wrong" } })).status, 403, path);
    }
    const refused = await upload("x.gcode", "G28\n", {}, "wrong");
    assert.equal(refused.status, 403, "an upload with a wrong key is refused after its body");
    assert.equal(sim.files().length, 0);
  });

  void test("uploads: names sanitized with their display kept, a folder path made, print files only", async () => {
    const res = await upload(".Привет мир?.gcode", "G28\n", { path: "a/.b" });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { files: { local: { name: string; path: string } } };
    assert.deepEqual(
      [body.files.local.name, body.files.local.path],
      ["Привет мир.gcode", "a/b/Привет мир.gcode"],
    );
    const entry = (await (
      await request(`/api/files/local/a/b/${encodeURIComponent("Привет мир.gcode")}`)
    ).json()) as {
      display: string;
      hash: string;
      size: number;
    };
    assert.equal(entry.display, ".Привет мир?.gcode");
    assert.equal(entry.hash, createHash("sha1").update("G28\n").digest("hex"));
    assert.equal(entry.size, 4);
    const stl = await upload("part.stl", "solid x\n");
    assert.equal(stl.status, 415);
    assert.equal(await errorOf(stl), "Could not upload file, invalid type");
    const kept = await upload("a.gcode", "1", {});
    assert.equal(kept.status, 201);
    const again = await upload("a.gcode", "2", { noOverwrite: "true" });
    assert.equal(again.status, 409);
    assert.equal(await errorOf(again), "File already exists and noOverwrite was set");
    assert.equal(sanitizeName("CON.gcode"), "CON_.gcode");
    assert.equal(sanitizeName("x ."), "x");
  });

  void test("the printed file cannot be replaced, deleted or moved; the job answers 409s with OctoPrint's words", async () => {
    assert.equal((await upload("print.gcode", "G28\n", { print: "true" })).status, 201);
    assert.equal(sim.state(), "Printing");
    const replace = await upload("print.gcode", "G1\n");
    assert.equal(replace.status, 409);
    assert.equal(await errorOf(replace), "Trying to overwrite file that is currently being printed");
    const del = await request("/api/files/local/print.gcode", { method: "DELETE" });
    assert.equal(del.status, 409);
    assert.equal(await errorOf(del), "Trying to delete a file that is currently in use");
    const move = await json("/api/files/local/print.gcode", { command: "move", destination: "moved.gcode" });
    assert.equal(move.status, 409);
    assert.equal(await errorOf(move), "Trying to move a file or folder that is currently in use");
    const start = await json("/api/job", { command: "start" });
    assert.equal(start.status, 409);
    assert.equal(await errorOf(start), "Printer already has an active print job, did you mean 'restart'?");
    assert.equal((await json("/api/job", { command: "pause", action: "pause" })).status, 204);
    assert.equal(sim.state(), "Paused");
    assert.equal((await json("/api/job", { command: "pause" })).status, 204, "toggle resumes");
    assert.equal(sim.state(), "Printing");
    assert.equal((await json("/api/job", { command: "cancel" })).status, 204);
    const cancel = await json("/api/job", { command: "cancel" });
    assert.equal(cancel.status, 409);
    assert.equal(
      await errorOf(cancel),
      "Printer is neither printing nor paused, 'cancel' command cannot be performed",
    );
    assert.equal((await request("/api/files/local/print.gcode", { method: "DELETE" })).status, 204);
    const bad = await json("/api/job", { command: "jump" });
    assert.equal(bad.status, 400);
    assert.equal(await errorOf(bad), "command is invalid");
  });

  void test("a printer that is not connected: /api/printer and job commands are 409, connect brings it back", async () => {
    assert.equal((await json("/api/connection", { command: "disconnect" })).status, 204);
    const connection = (await (await request("/api/connection")).json()) as { current: { state: string } };
    assert.equal(connection.current.state, "Closed");
    const printer = await request("/api/printer");
    assert.equal(printer.status, 409);
    assert.equal(await errorOf(printer), "Printer is not operational");
    const job = (await (await request("/api/job")).json()) as { state: string };
    assert.equal(job.state, "Offline");
    assert.equal((await json("/api/job", { command: "start" })).status, 409);
    assert.equal((await json("/api/connection", { command: "connect", port: "/dev/ttyUSB9" })).status, 400);
    assert.equal((await json("/api/connection", { command: "connect" })).status, 204);
    assert.equal(sim.state(), "Operational");
  });

  void test("copy into a folder, move as a rename; an existing destination is 409", async () => {
    assert.equal((await upload("orig.gcode", "G28\n")).status, 201);
    const folder = new FormData();
    folder.append("foldername", "into");
    assert.equal(
      (
        await fetch(`${sim.url}/api/files/local`, {
          method: "POST",
          headers: { "X-Api-Key": KEY },
          body: folder,
        })
      ).status,
      201,
    );
    const copy = await json("/api/files/local/orig.gcode", { command: "copy", destination: "into" });
    assert.equal(copy.status, 201);
    assert.equal(((await copy.json()) as { path: string }).path, "into/orig.gcode");
    const rename = await json("/api/files/local/orig.gcode", {
      command: "move",
      destination: "renamed.gcode",
    });
    assert.equal(rename.status, 201);
    const paths = sim.files().map((f) => f.path);
    assert.ok(
      paths.includes("into/orig.gcode") && paths.includes("renamed.gcode") && !paths.includes("orig.gcode"),
    );
    const taken = await json("/api/files/local/renamed.gcode", {
      command: "copy",
      destination: "into/orig.gcode",
    });
    assert.equal(taken.status, 409);
    assert.equal(await errorOf(taken), "File or folder does already exist");
  });

  void test("several uploads at once, each stored when its body is complete", async () => {
    sim.holdUploads();
    const big = "G1 X1\n".repeat(50_000);
    const pending = [1, 2, 3].map((i) => upload(`multi-${i}.gcode`, big));
    await waitFor("three uploads in progress", () => sim.uploads().length === 3);
    assert.equal(
      sim.files().filter((f) => f.path.startsWith("multi-")).length,
      0,
      "nothing stored before the end",
    );
    sim.releaseUploads();
    const answers = await Promise.all(pending);
    assert.deepEqual(
      answers.map((r) => r.status),
      [201, 201, 201],
    );
    assert.equal(sim.files().filter((f) => f.path.startsWith("multi-") && f.size === big.length).length, 3);
  });

  void test("an upload cut off mid-body leaves nothing", async () => {
    sim.injectFault({ resetAfterBytes: 10_000 });
    await assert.rejects(upload("cut.gcode", "G1\n".repeat(20_000)));
    await waitFor("the cut upload to end", () => sim.uploads().length === 0);
    assert.equal(
      sim.files().some((f) => f.path === "cut.gcode"),
      false,
    );
  });
});
