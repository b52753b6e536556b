/** The simulator's behaviour on the wire: uploads, conflicts, limits, faults, prints. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PrusaLinkSim, startPrusaLinkSims } from "./index.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { KEY, raw, startOnFreeConsecutivePorts, upload, withSim } from "./test-support.ts";

void describe("uploads", () => {
  void test("Content-Length is required (411 for chunked bodies)", () =>
    withSim({}, async (sim) => {
      const res = await raw(sim, "PUT", "/api/v1/files/usb/a.gcode", {
        headers: KEY,
        body: "G28\n",
        chunked: true,
      });
      assert.equal(res.status, 411);
      assert.deepEqual(sim.files(), []);
    }));

  void test("Overwrite, Create-Folder and folder creation by a trailing slash", () =>
    withSim({}, async (sim) => {
      assert.equal((await upload(sim, "a.gcode", "one")).status, 201);
      assert.equal(
        (await upload(sim, "A.GCODE", "two")).status,
        409,
        "exists (case-insensitively) without Overwrite",
      );
      assert.equal((await upload(sim, "A.GCODE", "three", { Overwrite: "?1" })).status, 201);
      assert.deepEqual(
        sim.files().map((f) => [f.path, f.size]),
        [["a.gcode", 5]],
        "the directory entry keeps its name",
      );
      const missing = await upload(sim, "x/y/b.gcode", "b");
      assert.equal(missing.status, 422, "the firmware's temp file will not rename into a missing folder");
      assert.match(missing.body, /Filename contains invalid characters/);
      assert.equal((await upload(sim, "x/y/b.gcode", "b", { "Create-Folder": "?1" })).status, 201);
      assert.equal((await raw(sim, "PUT", "/api/v1/files/usb/x/z/", { headers: KEY })).status, 201);
      assert.equal((await raw(sim, "PUT", "/api/v1/files/usb/x/z/", { headers: KEY })).status, 409, "exists");
      assert.equal((await raw(sim, "PUT", "/api/v1/files/usb/q/r/", { headers: KEY })).status, 404);
      assert.equal(
        (await raw(sim, "PUT", "/api/v1/files/usb/q/r/", { headers: { ...KEY, "Create-Folder": "?1" } }))
          .status,
        201,
      );
      assert.equal(
        (await raw(sim, "DELETE", "/api/v1/files/usb/x", { headers: KEY })).status,
        409,
        "not empty",
      );
      assert.equal(
        (await raw(sim, "DELETE", "/api/v1/files/usb/x", { headers: { ...KEY, Force: "?1" } })).status,
        204,
      );
      assert.equal((await raw(sim, "DELETE", "/api/v1/files/usb/x", { headers: KEY })).status, 404);
      assert.deepEqual(
        sim.files().map((f) => f.path),
        ["a.gcode"],
      );
    }));

  void test("uploads named with characters FAT forbids are 422; long, short, NFD and other-case names resolve", () =>
    withSim({}, async (sim) => {
      for (const bad of ["a%3Ab.gcode", "a%22b.gcode", "a%3Fb.gcode", "a%7Cb.gcode", "a%01b.gcode"]) {
        assert.equal((await upload(sim, bad, "x")).status, 422, bad);
        assert.equal((await raw(sim, "GET", `/api/v1/files/usb/${bad}`, { headers: KEY })).status, 400, bad);
      }
      const name = encodeURIComponent("Café #1 & more+.gcode");
      assert.equal((await upload(sim, `Dossier%20long/${name}`, "x", { "Create-Folder": "?1" })).status, 201);
      for (const path of [
        "DOSSIE~1/" + encodeURIComponent("caf_#1~1.gco"),
        "dossier%20LONG/" + encodeURIComponent("CAFÉ #1 & MORE+.GCODE"),
        "Dossier%20long/" + encodeURIComponent("Cafe\u0301 #1 & more+.gcode"),
      ]) {
        const res = await raw(sim, "GET", `/api/v1/files/usb/${path}`, { headers: KEY });
        assert.equal(res.status, 200, path);
        assert.equal(
          (JSON.parse(res.body) as { display_name: string }).display_name,
          "Café #1 & more+.gcode",
        );
      }
    }));

  void test("one transfer at a time: a concurrent upload is 409", () =>
    withSim({}, async (sim) => {
      sim.holdUploads();
      const first = upload(sim, "first.gcode", Buffer.alloc(300_000));
      await waitFor("the first upload to be in progress", () => sim.transfer());
      const second = await upload(sim, "second.gcode", Buffer.alloc(10));
      assert.equal(second.status, 409);
      assert.match(second.body, /Another transfer in progress/);
      sim.releaseUploads();
      assert.equal((await first).status, 201);
      assert.equal((await upload(sim, "second.gcode", Buffer.alloc(10))).status, 201);
    }));

  void test("507 when the upload does not fit; a replacement counts the space it frees", () =>
    withSim({ capacity: 1000 }, async (sim) => {
      assert.equal((await upload(sim, "a.gcode", Buffer.alloc(600))).status, 201);
      assert.equal((await upload(sim, "b.gcode", Buffer.alloc(500))).status, 507);
      assert.equal((await upload(sim, "a.gcode", Buffer.alloc(900), { Overwrite: "?1" })).status, 201);
      const storage = JSON.parse((await raw(sim, "GET", "/api/v1/storage", { headers: KEY })).body) as {
        storage_list: { free_space: number }[];
      };
      assert.equal(storage.storage_list[0]?.free_space, 100);
    }));

  void test("the ingest rate is held: 2 MB at 1 MB/s takes no less than 2 s", () =>
    withSim({ rate: 1_000_000 }, async (sim) => {
      // Only a lower bound: a loaded machine may be slower. pacer.test.ts checks the pacing exactly.
      const started = performance.now();
      assert.equal((await upload(sim, "big.gcode", Buffer.alloc(2_000_000))).status, 201);
      const seconds = (performance.now() - started) / 1000;
      assert.ok(seconds >= 1.99, `took ${seconds.toFixed(3)} s`);
    }));

  void test("an interrupted upload leaves no file, and a replaced file keeps its content until the new one is complete", () =>
    withSim({}, async (sim) => {
      assert.equal((await upload(sim, "keep.gcode", "old content")).status, 201);
      await raw(sim, "PUT", "/api/v1/files/usb/keep.gcode", {
        headers: { ...KEY, Overwrite: "?1", "Content-Length": "1000" },
        cutAfter: Buffer.alloc(400, 1),
      });
      await raw(sim, "PUT", "/api/v1/files/usb/new.gcode", {
        headers: { ...KEY, "Content-Length": "1000" },
        cutAfter: Buffer.alloc(400, 1),
      });
      assert.deepEqual(
        sim.files().map((f) => [f.path, f.size]),
        [["keep.gcode", 11]],
      );
      const download = await raw(sim, "GET", "/api/files/usb/keep.gcode/raw", { headers: KEY });
      assert.equal(download.body, "old content");
      assert.equal(
        (await raw(sim, "GET", "/api/v1/transfer", { headers: KEY })).status,
        204,
        "the transfer is over",
      );
    }));
});

void describe("printing", () => {
  void test("a print runs with the clock, pauses, resumes and finishes; its file is protected meanwhile", async () => {
    let now = 1_700_000_000_000;
    await withSim({ clock: () => now }, async (sim) => {
      await upload(sim, "jobs/part.gcode", "G28\n", { "Create-Folder": "?1" });
      sim.putFile("notes.txt", "hi");
      assert.equal(
        (await raw(sim, "POST", "/api/v1/files/usb/notes.txt", { headers: KEY })).status,
        409,
        "not a print file",
      );
      assert.equal(
        (await raw(sim, "POST", "/api/v1/files/usb/JOBS/PART~1.GCO", { headers: KEY })).status,
        204,
      );
      assert.equal(
        (await raw(sim, "POST", "/api/v1/files/usb/jobs/part.gcode", { headers: KEY })).status,
        409,
        "a job runs",
      );
      const head = await raw(sim, "HEAD", "/api/v1/files/usb/jobs/part.gcode", { headers: KEY });
      assert.equal(head.headers["currently-printed"], "true");
      assert.equal(head.headers["read-only"], "false");
      assert.equal(
        (await upload(sim, "jobs/part.gcode", "x", { Overwrite: "?1" })).status,
        409,
        "overwrite the printed file",
      );
      assert.equal(
        (await raw(sim, "DELETE", "/api/v1/files/usb/jobs/part.gcode", { headers: KEY })).status,
        409,
      );
      assert.equal(
        (await raw(sim, "DELETE", "/api/v1/files/usb/jobs", { headers: { ...KEY, Force: "?1" } })).status,
        409,
      );

      const job = async () =>
        JSON.parse((await raw(sim, "GET", "/api/v1/job", { headers: KEY })).body) as {
          id: number;
          state: string;
          progress: number;
        };
      now += 60_000;
      assert.deepEqual(await job(), { ...(await job()), state: "PRINTING", progress: 10 });
      const { id } = await job();
      assert.equal((await raw(sim, "PUT", `/api/v1/job/${id}/pause`, { headers: KEY })).status, 204);
      assert.equal((await raw(sim, "PUT", `/api/v1/job/${id}/pause`, { headers: KEY })).status, 409);
      now += 600_000;
      assert.equal((await job()).progress, 10, "no progress while paused");
      assert.equal(sim.state(), "PAUSED");
      assert.equal((await raw(sim, "PUT", `/api/v1/job/${id + 1}/resume`, { headers: KEY })).status, 404);
      assert.equal((await raw(sim, "PUT", `/api/v1/job/${id}/resume`, { headers: KEY })).status, 204);
      now += 540_000;
      assert.equal((await job()).state, "FINISHED");
      assert.equal(sim.state(), "FINISHED");
      assert.equal(
        (await raw(sim, "DELETE", "/api/v1/files/usb/jobs/part.gcode", { headers: KEY })).status,
        204,
      );
      sim.setState("IDLE");
      assert.equal((await raw(sim, "GET", "/api/v1/job", { headers: KEY })).status, 204);
    });
  });

  void test("stopping a job through the API", () =>
    withSim({}, async (sim) => {
      await upload(sim, "a.gcode", "G28\n");
      sim.startPrint("a.gcode", 60);
      const { id } = JSON.parse((await raw(sim, "GET", "/api/v1/job", { headers: KEY })).body) as {
        id: number;
      };
      assert.equal((await raw(sim, "DELETE", `/api/v1/job/${id}`, { headers: KEY })).status, 204);
      assert.equal(sim.state(), "STOPPED");
      assert.equal((await raw(sim, "DELETE", `/api/v1/job/${id}`, { headers: KEY })).status, 409);
    }));

  void test("Print-After-Upload starts the uploaded file", () =>
    withSim({}, async (sim) => {
      assert.equal((await upload(sim, "go.gcode", "G28\n", { "Print-After-Upload": "?1" })).status, 201);
      assert.equal(sim.state(), "PRINTING");
      assert.equal((await upload(sim, "next.gcode", "G28\n", { "Print-After-Upload": "?1" })).status, 409);
    }));
});

void describe("control API and faults", () => {
  void test("state, print and faults over HTTP", () =>
    withSim({}, async (sim) => {
      await upload(sim, "a.gcode", "G28\n");
      const json = (body: unknown) => ({
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal((await raw(sim, "PUT", "/_sim/state", json({ state: "BUSY" }))).status, 204);
      assert.equal((await raw(sim, "POST", "/_sim/print", json({ path: "a.gcode" }))).status, 409, "busy");
      assert.equal((await raw(sim, "PUT", "/_sim/state", json({ state: "SLEEPING" }))).status, 400);
      assert.equal((await raw(sim, "PUT", "/_sim/state", json({ state: "IDLE" }))).status, 204);
      assert.equal(
        (await raw(sim, "POST", "/_sim/print", json({ path: "/usb/a.gcode", duration_s: 30 }))).status,
        204,
      );
      const state = JSON.parse((await raw(sim, "GET", "/_sim/state")).body) as {
        state: string;
        files: { path: string }[];
        job: { file: { display_name: string } };
      };
      assert.equal(state.state, "PRINTING");
      assert.equal(state.job.file.display_name, "a.gcode");
      assert.deepEqual(
        state.files.map((f) => f.path),
        ["a.gcode"],
      );

      assert.equal((await raw(sim, "POST", "/_sim/faults", json({ status: 503, count: 2 }))).status, 204);
      assert.equal((await raw(sim, "GET", "/api/v1/status", { headers: KEY })).status, 503);
      assert.equal((await raw(sim, "GET", "/_sim/state")).status, 200, "the control API is not affected");
      assert.equal((await raw(sim, "GET", "/api/v1/status", { headers: KEY })).status, 503);
      assert.equal((await raw(sim, "GET", "/api/v1/status", { headers: KEY })).status, 200);
      await raw(sim, "POST", "/_sim/faults", json({ status: 500, count: 5 }));
      assert.equal((await raw(sim, "DELETE", "/_sim/faults")).status, 204);
      assert.equal((await raw(sim, "GET", "/api/v1/status", { headers: KEY })).status, 200);
    }));

  void test("reset_after_bytes drops the next upload once, leaving no file", () =>
    withSim({}, async (sim) => {
      sim.injectFault({ resetAfterBytes: 1000 });
      await assert.rejects(upload(sim, "a.gcode", Buffer.alloc(100_000)), /socket hang up|ECONNRESET|EPIPE/);
      assert.deepEqual(sim.files(), []);
      assert.equal((await upload(sim, "a.gcode", Buffer.alloc(100_000))).status, 201);
    }));

  void test("held uploads start, take no bytes until released, and then complete", () =>
    withSim({}, async (sim) => {
      const json = { headers: { "Content-Type": "application/json" }, body: "{}" };
      assert.equal((await raw(sim, "POST", "/_sim/hold", json)).status, 204);
      assert.equal(
        (JSON.parse((await raw(sim, "GET", "/_sim/state")).body) as { uploads_held: boolean }).uploads_held,
        true,
      );
      const held = upload(sim, "held.gcode", Buffer.alloc(100_000, 1));
      const transfer = await waitFor("the held upload to show as the transfer", () => sim.transfer());
      assert.deepEqual(transfer, { path: "held.gcode", size: 100_000, transferred: 0 });
      const api = await raw(sim, "GET", "/api/v1/transfer", { headers: KEY });
      assert.equal(api.status, 200, "the printer reports the upload in progress");
      assert.deepEqual(sim.files(), [], "nothing stored while held");
      assert.equal(sim.transfer()?.transferred, 0, "no byte taken while held");
      assert.equal((await raw(sim, "DELETE", "/_sim/hold")).status, 204);
      assert.equal((await held).status, 201);
      assert.deepEqual(
        sim.files().map((f) => [f.path, f.size]),
        [["held.gcode", 100_000]],
      );
      assert.equal(sim.transfer(), undefined);
    }));

  void test("closing a simulator releases a held upload (its client sees the connection drop)", async () => {
    const sim = await PrusaLinkSim.start({ apiKey: "key" });
    try {
      sim.holdUploads();
      const held = upload(sim, "held.gcode", Buffer.alloc(100_000));
      await waitFor("the held upload to show as the transfer", () => sim.transfer(), { timeoutMs: 10_000 });
      await sim.close();
      await assert.rejects(held, /socket hang up|ECONNRESET|EPIPE/);
    } finally {
      await sim.close();
    }
  });

  void test("startPrusaLinkSims takes consecutive ports, and names a port in use", async () => {
    const sims = await startOnFreeConsecutivePorts({ count: 3, name: "farm" });
    try {
      const base = sims[0]?.port ?? 0;
      assert.deepEqual(
        sims.map((s) => s.port),
        [base, base + 1, base + 2],
      );
      assert.deepEqual(
        sims.map((s) => s.name),
        ["farm-1", "farm-2", "farm-3"],
      );
      // A range that starts on a port in use (the second simulator's) is refused, naming it.
      await assert.rejects(
        startPrusaLinkSims({ count: 2, port: base + 1 }),
        (error: NodeJS.ErrnoException) => {
          assert.equal(error.code, "EADDRINUSE");
          assert.equal(
            error.message,
            `port ${base + 1} of 127.0.0.1 is in use (2 simulators need ports ${base + 1}-${base + 2})`,
          );
          return true;
        },
      );
    } finally {
      await Promise.all(sims.map((s) => s.close()));
    }
  });
});

void describe("the shared virtual printer through PrusaLink", () => {
  const json = (body: unknown) => ({
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const status = async (sim: PrusaLinkSim) =>
    JSON.parse((await raw(sim, "GET", "/api/v1/status", { headers: KEY })).body) as {
      printer: {
        state: string;
        temp_nozzle: number;
        target_nozzle: number;
        status_printer: { message: string };
      };
      job?: { id: number; progress: number; time_remaining: number };
    };

  void test("the G-code's estimate at --speed 100, heating, runout, error and disconnect over /_sim/", async () => {
    let now = 1_700_000_000_000;
    await withSim({ clock: () => now, speed: 100 }, async (sim) => {
      const gcode = "M109 S230\nM190 S65\n; estimated printing time (normal mode) = 10m 0s\n";
      await upload(sim, "part.gcode", gcode);
      assert.equal((await raw(sim, "POST", "/_sim/print", json({ path: "part.gcode" }))).status, 204);
      now += 3000;
      const half = await status(sim);
      assert.equal(half.job?.progress, 50);
      assert.equal(half.job.time_remaining, 3);
      assert.equal(half.printer.target_nozzle, 230);
      assert.ok(half.printer.temp_nozzle > 24 && half.printer.temp_nozzle < 230, "heating");

      assert.equal((await raw(sim, "POST", "/_sim/runout")).status, 204);
      const runout = await status(sim);
      assert.equal(runout.printer.state, "ATTENTION");
      assert.equal(runout.printer.status_printer.message, "Filament runout");
      now += 60_000;
      assert.equal((await status(sim)).job?.progress, 50, "halted");
      const id = runout.job?.id ?? 0;
      assert.equal((await raw(sim, "PUT", `/api/v1/job/${id}/resume`, { headers: KEY })).status, 204);
      assert.equal((await status(sim)).printer.state, "PRINTING");

      assert.equal((await raw(sim, "POST", "/_sim/disconnect")).status, 204);
      await assert.rejects(raw(sim, "GET", "/api/v1/status", { headers: KEY }), /socket hang up|ECONNRESET/);
      assert.equal((await raw(sim, "GET", "/_sim/state")).status, 200, "the control API still answers");
      assert.equal((await raw(sim, "DELETE", "/_sim/disconnect")).status, 204);
      now += 3000;
      assert.equal((await status(sim)).printer.state, "FINISHED", "it printed on while disconnected");

      assert.equal((await raw(sim, "POST", "/_sim/error", json({ message: "Thermal runaway" }))).status, 204);
      const failed = await status(sim);
      assert.equal(failed.printer.state, "ERROR");
      assert.equal(failed.printer.status_printer.message, "Thermal runaway");
      assert.equal((await raw(sim, "POST", "/_sim/runout")).status, 409, "nothing prints");
      assert.equal((await raw(sim, "PUT", "/_sim/speed", json({ speed: 0 }))).status, 400);
      assert.equal((await raw(sim, "PUT", "/_sim/speed", json({ speed: 2 }))).status, 204);
      assert.equal((JSON.parse((await raw(sim, "GET", "/_sim/state")).body) as { speed: number }).speed, 2);
    });
  });

  void test("READY is idle, kept until the state changes", () =>
    withSim({}, async (sim) => {
      sim.setState("READY");
      assert.equal(sim.state(), "READY");
      assert.equal(sim.printer.activity, "idle");
      sim.setState("BUSY");
      sim.setState("IDLE");
      assert.equal(sim.state(), "IDLE");
      sim.setState("READY");
      const status = JSON.parse((await raw(sim, "GET", "/api/v1/status", { headers: KEY })).body) as {
        printer: { state: string };
      };
      assert.equal(status.printer.state, "READY");
    }));
});

void describe("what real firmware accepts", () => {
  void test("X-Api-Key: <password>, Overwrite: true and Print-After-Upload: false get what an MK4 answers", async () => {
    const sim = await PrusaLinkSim.start({ password: "secret" });
    try {
      const send = (path: string, body: string, headers: Record<string, string>) =>
        raw(sim, "PUT", `/api/v1/files/usb/${path}`, {
          headers: { "X-Api-Key": "secret", ...headers },
          body,
        });
      const client = { Overwrite: "true", "Print-After-Upload": "false" };
      assert.equal((await send("part.gcode", "G28\n", client)).status, 201, "the password is the API key");
      assert.equal(sim.state(), "IDLE", "Print-After-Upload: false does not print");
      const again = await send("part.gcode", "G28 X\n", client);
      assert.equal(again.status, 409, "Overwrite: true is not ?1: as if absent");
      assert.match(again.body, /File already exists/);
      assert.equal((await send("part.gcode", "G28 X\n", { Overwrite: "?1" })).status, 201);
      for (const value of ["1", "yes", "?0", "TRUE"]) {
        const res = await send(`f-${value.replace("?", "q")}.gcode`, "G28\n", { "Create-Folder": value });
        assert.equal(res.status, 201, `Create-Folder: ${value} is ignored, never a 400`);
      }
      assert.equal(
        (await send("deeper/x.gcode", "G28\n", { "Create-Folder": "true" })).status,
        422,
        "Create-Folder: true makes no folder",
      );
      const notGcode = await send("readme.txt", "hello", {});
      assert.equal(notGcode.status, 415);
      assert.match(notGcode.body, /Not a GCODE/);
      for (const ext of ["bgcode", "gco", "g"])
        assert.equal((await send(`x.${ext}`, "G28\n", {})).status, 201, ext);
      assert.equal(
        (await raw(sim, "GET", "/api/v1/status", { headers: { "X-Api-Key": "wrong" } })).status,
        401,
      );
    } finally {
      await sim.close();
    }
  });

  void test("Print-After-Upload takes ?1, 1 and true; a printer that cannot print keeps the file and says so", async () => {
    for (const value of ["?1", "1", "true"]) {
      await withSim({}, async (sim) => {
        assert.equal((await upload(sim, "go.gcode", "G28\n", { "Print-After-Upload": value })).status, 201);
        assert.equal(sim.state(), "PRINTING", value);
        const busy = await upload(sim, "next.gcode", "G28\n", { "Print-After-Upload": value });
        assert.equal(busy.status, 409);
        assert.match(busy.body, /Can't print right now/);
        assert.ok(
          sim.files().some((f) => f.path === "next.gcode"),
          "the file is stored all the same",
        );
      });
    }
  });

  void test("an --api-key replaces the password as the key", async () => {
    const sim = await PrusaLinkSim.start({ password: "secret", apiKey: "other" });
    try {
      const status = (key: string) => raw(sim, "GET", "/api/v1/status", { headers: { "X-Api-Key": key } });
      assert.equal((await status("other")).status, 200);
      assert.equal((await status("secret")).status, 401);
    } finally {
      await sim.close();
    }
  });
});
