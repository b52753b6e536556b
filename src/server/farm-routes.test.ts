/**
 * The farm's routes on a real server: files (upload, metadata, thumbnail, download with ETag,
 * delete when unused, 413), jobs and orders (submit, approve, reject, cancel, reprioritize, assign,
 * filters, history; users see and cancel only their own), printers (add, edit, retire through the
 * runtime registry; actions; a ferry.yaml printer is changed there). Nothing prints here: the
 * printers point at a closed port; test/farm-api.test.ts prints end to end.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { fetch, FormData } from "undici";
import { startServer, type ProblemBody, type TestServer } from "./test-support.ts";

const FIXTURES = new URL("../../test/fixtures/gcode/", import.meta.url);
const MAX_BYTES = 256 * 1024;

interface FileBody {
  id: string;
  name: string;
  sha256: string;
  size: number;
  kind: string;
  metadata: { slicer?: string; estimatedTimeS?: number } | null;
  thumbnails: { index: number; format: string; contentType: string; width: number; url: string }[];
  uploadedBy: string | null;
  url: string;
}
interface JobBody {
  id: string;
  orderId: string;
  state: string;
  owner: string;
  priority: number;
  printer: string | null;
  file: { id: string; name: string };
}
interface OrderBody {
  id: string;
  owner: string;
  jobs: JobBody[];
}
interface PrinterBody {
  name: string;
  type: string;
  source: string;
  model: string | null;
  tags: string[];
  bedClear: boolean;
  maintenance: { reason: string; by: string } | null;
  job: JobBody | null;
}

describe("farm routes", () => {
  let t: TestServer;
  const tokens: Record<string, string> = {};
  let cube: Buffer;
  let cubeFile: FileBody;

  before(async () => {
    t = await startServer({
      yaml: `devices:
  yaml-1: { type: prusalink, url: "http://127.0.0.1:1", password: x, farm: true, model: MK4 }
farm:
  approval: [user]
  auto_schedule: false
`,
      app: { libraryMaxBytes: MAX_BYTES },
    });
    for (const [name, role] of [
      ["admin", "admin"],
      ["olga", "operator"],
      ["wall", "viewer"],
      ["alice", "user"],
      ["bob", "user"],
    ] as const)
      tokens[name] = await t.tokenFor(role, name);
    cube = await readFile(new URL("cube-mini-png.gcode", FIXTURES));
  });
  after(() => t.close());

  const upload = async (as: string, name: string, bytes: Buffer, path = "/api/v1/files") => {
    const form = new FormData();
    form.append("file", new Blob([bytes]), name);
    const response = await fetch(t.url + path, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens[as] ?? ""}` },
      body: form,
    });
    const text = await response.text();
    return { status: response.status, response, body: JSON.parse(text) as unknown };
  };
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller states the shape
  const call = <T = ProblemBody>(as: string, path: string, init: { method?: string; body?: unknown } = {}) =>
    t.json<T>(path, { token: tokens[as] ?? "", ...init });

  describe("files", () => {
    test("an upload is stored with its metadata; a second one of the same bytes is the same entry", async () => {
      const first = await upload("alice", "cube.gcode", cube);
      assert.equal(first.status, 201, JSON.stringify(first.body));
      const { file, duplicate } = first.body as { file: FileBody; duplicate: boolean };
      cubeFile = file;
      assert.equal(duplicate, false);
      assert.equal(file.name, "cube.gcode");
      assert.equal(file.size, cube.length);
      assert.equal(file.sha256, createHash("sha256").update(cube).digest("hex"));
      assert.equal(file.uploadedBy, "alice");
      assert.equal(file.metadata?.slicer, "PrusaSlicer");
      assert.equal(file.metadata.estimatedTimeS, 9 * 60 + 1);
      assert.equal(first.response.headers.get("location"), `/api/v1/files/${file.id}`);
      assert.deepEqual(
        file.thumbnails.map((th) => [th.format, th.contentType]),
        file.thumbnails.map(() => ["png", "image/png"]),
      );
      assert.ok(file.thumbnails.length > 0, "the fixture has PNG thumbnails");

      const again = await upload("bob", "other-name.gcode", cube);
      assert.equal(again.status, 201);
      assert.deepEqual(again.body, { file, duplicate: true });

      const listed = await call<{ total: number; files: FileBody[] }>("wall", "/api/v1/files");
      assert.equal(listed.status, 200);
      assert.equal(listed.body.total, 1);
      assert.deepEqual(listed.body.files, [file]);
      assert.deepEqual((await call("wall", `/api/v1/files/${file.id}`)).body, file);
    });

    test("download: the bytes with the sha256 as ETag; If-None-Match answers 304", async () => {
      const response = await t.fetch(cubeFile.url, { token: tokens.wall ?? "" });
      assert.equal(response.status, 200);
      const etag = response.headers.get("etag");
      assert.equal(etag, `"${cubeFile.sha256}"`);
      assert.match(response.headers.get("content-disposition") ?? "", /attachment; filename="cube\.gcode"/);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(cube));
      const cached = await t.fetch(cubeFile.url, {
        token: tokens.wall ?? "",
        headers: { "if-none-match": etag },
      });
      assert.equal(cached.status, 304);
      assert.equal(await cached.text(), "");
    });

    test("a thumbnail is the picture with its content type; a missing one is 404 naming it", async () => {
      const thumbnail = cubeFile.thumbnails[0];
      assert.ok(thumbnail);
      const response = await t.fetch(thumbnail.url, { token: tokens.wall ?? "" });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "image/png");
      const png = Buffer.from(await response.arrayBuffer());
      assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])));
      assert.equal(png.readUInt32BE(16), thumbnail.width, "the PNG's own width");
      const missing = await call("wall", `/api/v1/files/${cubeFile.id}/thumbnails/99`);
      assert.equal(missing.status, 404);
      assert.match(missing.body.detail, /cube\.gcode has no thumbnail 99/);
    });

    test("past the library's limit: 413, the connection closed, nothing kept", async () => {
      const before = await t.app.library.count();
      const big = Buffer.alloc(MAX_BYTES + 1, 0x3b);
      const { status, body, response } = await upload("alice", "big.gcode", big);
      assert.equal(status, 413);
      assert.equal((body as ProblemBody).type, "tag:ferry,2026:problem:body-too-large");
      assert.match((body as ProblemBody).detail, new RegExp(`limit of ${MAX_BYTES} bytes`));
      assert.equal(response.headers.get("connection"), "close");
      assert.equal(await t.app.library.count(), before);
      // Exactly the limit is taken.
      const fits = await upload("alice", "fits.gcode", Buffer.alloc(MAX_BYTES, 0x3b));
      assert.equal(fits.status, 201);
      const fitsId = (fits.body as { file: FileBody }).file.id;
      assert.equal((await call("alice", `/api/v1/files/${fitsId}`, { method: "DELETE" })).status, 204);
    });

    test("bad uploads: not a print file, no file, not multipart, an unknown id", async () => {
      const stl = await upload("alice", "cube10.stl", Buffer.from("solid cube\n"));
      assert.equal(stl.status, 422);
      assert.match((stl.body as ProblemBody).detail, /cube10\.stl: not a print file/);
      const form = new FormData();
      form.append("print", "true");
      const empty = await fetch(`${t.url}/api/v1/files`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens.alice ?? ""}` },
        body: form,
      });
      assert.equal(empty.status, 400);
      assert.match(((await empty.json()) as ProblemBody).detail, /no file: send it in the field "file"/);
      const json = await call("alice", "/api/v1/files", { method: "POST", body: { file: "x" } });
      assert.equal(json.status, 415);
      const unknown = await call("wall", "/api/v1/files/no-such-file");
      assert.equal(unknown.status, 404);
      assert.match(unknown.body.detail, /no file no-such-file/);
      assert.equal((await upload("wall", "cube.gcode", cube)).status, 403, "viewers do not upload");
    });
  });

  describe("jobs and orders", () => {
    let order: OrderBody;

    test("a user's submission of 2 copies is one order of 2 jobs waiting for approval", async () => {
      const { status, body, response } = await call<OrderBody>("alice", "/api/v1/jobs", {
        method: "POST",
        body: { fileId: cubeFile.id, quantity: 2, tags: ["PLA"] },
      });
      assert.equal(status, 201, JSON.stringify(body));
      order = body;
      assert.equal(body.owner, "alice");
      assert.equal(response.headers.get("location"), `/api/v1/orders/${body.id}`);
      assert.deepEqual(
        body.jobs.map((j) => [j.state, j.owner, j.orderId, j.file.name]),
        [
          ["pending_approval", "alice", body.id, "cube.gcode"],
          ["pending_approval", "alice", body.id, "cube.gcode"],
        ],
      );
      const again = await call<OrderBody>("alice", `/api/v1/orders/${body.id}`);
      assert.deepEqual(again.body, body);
    });

    test("bad submissions: an unknown file, a user's priority, an unknown field", async () => {
      const unknown = await call("alice", "/api/v1/jobs", { method: "POST", body: { fileId: "nope" } });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.subject, "fileId");
      assert.match(unknown.body.detail, /no file nope/);
      const priority = await call("alice", "/api/v1/jobs", {
        method: "POST",
        body: { fileId: cubeFile.id, priority: 5 },
      });
      assert.equal(priority.status, 403);
      assert.equal(priority.body.subject, "priority");
      const extra = await call("alice", "/api/v1/jobs", {
        method: "POST",
        body: { fileId: cubeFile.id, owner: "bob" },
      });
      assert.deepEqual(extra.body.errors, [{ path: "body.owner", message: "unknown field" }]);
    });

    test("a user sees and cancels only their own jobs; another's is not found", async () => {
      const [mine] = order.jobs;
      assert.ok(mine);
      assert.deepEqual((await call<JobBody[]>("bob", "/api/v1/jobs")).body, []);
      assert.deepEqual((await call<JobBody[]>("bob", "/api/v1/jobs?owner=alice")).body, []);
      for (const path of [
        `/api/v1/jobs/${mine.id}`,
        `/api/v1/jobs/${mine.id}/history`,
        `/api/v1/orders/${order.id}`,
      ]) {
        const hidden = await call("bob", path);
        assert.equal(hidden.status, 404, path);
        assert.match(hidden.body.detail, new RegExp(`there is no (job ${mine.id}|order ${order.id})`), path);
      }
      const cancel = await call("bob", `/api/v1/jobs/${mine.id}/cancel`, { method: "POST" });
      assert.equal(cancel.status, 404);
      assert.match(cancel.body.detail, new RegExp(`there is no job ${mine.id}`));
      assert.equal((await call("bob", `/api/v1/orders/${order.id}/cancel`, { method: "POST" })).status, 404);
      assert.equal((await call<JobBody>("alice", `/api/v1/jobs/${mine.id}`)).body.state, "pending_approval");
      // A viewer account (a wall display) sees every job, read-only.
      const wall = await call<JobBody[]>("wall", "/api/v1/jobs?owner=alice");
      assert.deepEqual(wall.body.map((j) => j.id).sort(), order.jobs.map((j) => j.id).sort());
      assert.equal((await call("wall", `/api/v1/jobs/${mine.id}/cancel`, { method: "POST" })).status, 403);
      // The owner cancels their own.
      const own = await call<JobBody>("alice", `/api/v1/jobs/${mine.id}/cancel`, {
        method: "POST",
        body: { reason: "wrong colour" },
      });
      assert.equal(own.status, 200);
      assert.equal(own.body.state, "cancelled");
    });

    test("an operator approves, reprioritizes, rejects; a second approval is 409 naming the state", async () => {
      const second = order.jobs[1];
      assert.ok(second);
      const approved = await call<JobBody>("olga", `/api/v1/jobs/${second.id}/approve`, { method: "POST" });
      assert.equal(approved.status, 200);
      assert.equal(approved.body.state, "queued");
      const twice = await call("olga", `/api/v1/jobs/${second.id}/approve`, { method: "POST" });
      assert.equal(twice.status, 409);
      assert.equal(twice.body.subject, second.id);
      assert.match(twice.body.detail, new RegExp(`job ${second.id} is queued, not pending_approval`));
      assert.equal(
        (await call("alice", `/api/v1/jobs/${second.id}/approve`, { method: "POST" })).status,
        403,
      );
      const priority = await call<JobBody>("olga", `/api/v1/jobs/${second.id}/priority`, {
        method: "POST",
        body: { priority: 7 },
      });
      assert.equal(priority.body.priority, 7);
      const reject = await call("olga", `/api/v1/jobs/${second.id}/reject`, { method: "POST", body: {} });
      assert.equal(reject.status, 409);
      assert.match(reject.body.detail, /is queued, not pending_approval/);
      const missing = await call("olga", "/api/v1/jobs/j-nope/approve", { method: "POST" });
      assert.equal(missing.status, 404);
      assert.match(missing.body.detail, /there is no job j-nope/);

      const next = await call<OrderBody>("bob", "/api/v1/jobs", {
        method: "POST",
        body: { fileId: cubeFile.id },
      });
      const [bobs] = next.body.jobs;
      assert.ok(bobs);
      const rejected = await call<JobBody>("olga", `/api/v1/jobs/${bobs.id}/reject`, {
        method: "POST",
        body: { reason: "too big" },
      });
      assert.equal(rejected.body.state, "cancelled");
      const history = await call<{ from: string | null; to: string; actor: string; reason: string | null }[]>(
        "bob",
        `/api/v1/jobs/${bobs.id}/history`,
      );
      assert.deepEqual(
        history.body.map((h) => [h.from, h.to, h.actor, h.reason]),
        [
          [null, "pending_approval", "bob", null],
          ["pending_approval", "cancelled", "olga", "rejected: too big"],
        ],
      );
    });

    test("assign: an unknown printer is 404, one lacking the job's tag 409 naming it; list filters", async () => {
      const queued = order.jobs[1];
      assert.ok(queued);
      const unknown = await call("olga", `/api/v1/jobs/${queued.id}/assign`, {
        method: "POST",
        body: { printer: "nope" },
      });
      assert.equal(unknown.status, 404);
      assert.match(unknown.body.detail, /no farm printer nope/);
      const lacks = await call("olga", `/api/v1/jobs/${queued.id}/assign`, {
        method: "POST",
        body: { printer: "yaml-1" },
      });
      assert.equal(lacks.status, 409);
      assert.match(lacks.body.detail, /yaml-1 lacks tag PLA/);
      const filtered = await call<JobBody[]>(
        "olga",
        "/api/v1/jobs?state=queued,pending_approval&owner=alice",
      );
      assert.deepEqual(
        filtered.body.map((j) => j.id),
        [queued.id],
      );
      const bad = await call("olga", "/api/v1/jobs?state=flying");
      assert.equal(bad.status, 400);
      assert.match(bad.body.errors?.[0]?.path ?? "", /^query\.state/);
    });

    test("a file a live job uses cannot be deleted; its uploader or an operator deletes it after", async () => {
      const inUse = await call("olga", `/api/v1/files/${cubeFile.id}`, { method: "DELETE" });
      assert.equal(inUse.status, 409);
      assert.match(inUse.body.detail, /cube\.gcode is used by a print job/);
      const cancelled = await call<OrderBody>("alice", `/api/v1/orders/${order.id}/cancel`, {
        method: "POST",
      });
      assert.deepEqual(
        cancelled.body.jobs.map((j) => j.state),
        ["cancelled", "cancelled"],
      );
      assert.equal((await call("bob", `/api/v1/files/${cubeFile.id}`, { method: "DELETE" })).status, 403);
      assert.equal((await call("alice", `/api/v1/files/${cubeFile.id}`, { method: "DELETE" })).status, 204);
      assert.equal((await call("wall", `/api/v1/files/${cubeFile.id}`)).status, 404);
      // Finished jobs keep the file's name.
      assert.equal(
        (await call<JobBody>("alice", `/api/v1/jobs/${order.jobs[0]?.id ?? ""}`)).body.file.name,
        "cube.gcode",
      );
    });
  });

  describe("the OctoPrint face", () => {
    const octoUpload = async (as: string, parts: [string, string | [Buffer, string]][]) => {
      const form = new FormData();
      for (const [name, value] of parts)
        if (typeof value === "string") form.append(name, value);
        else form.append(name, new Blob([value[0]]), value[1]);
      const response = await fetch(`${t.url}/api/files/local`, {
        method: "POST",
        headers: { "x-api-key": tokens[as] ?? "" },
        body: form,
      });
      return {
        status: response.status,
        body: (await response.json()) as Record<string, unknown> & ProblemBody,
      };
    };

    test("version and server answer as OctoPrint does, to an API token in X-Api-Key", async () => {
      const version = await t.json("/api/version", { headers: { "x-api-key": tokens.wall ?? "" } });
      assert.equal(version.status, 200);
      assert.deepEqual(version.body, {
        api: "0.1",
        server: "1.10.0",
        text: "OctoPrint 1.10.0 (Ferry print farm)",
      });
      const server = await t.json("/api/server", { headers: { "x-api-key": tokens.wall ?? "" } });
      assert.deepEqual(server.body, { version: "1.10.0", safemode: false });
      assert.equal((await t.json("/api/version")).status, 401);
    });

    test("without print the file is only stored; fields after the file count; an operator's job is queued at once", async () => {
      const stored = await octoUpload("alice", [
        ["file", [cube, "hook.gcode"]],
        ["select", "true"],
      ]);
      assert.equal(stored.status, 201, JSON.stringify(stored));
      assert.equal(stored.body.effectivePrint, false);
      assert.equal(stored.body.effectiveSelect, false);
      assert.deepEqual((stored.body.ferry as { jobs: unknown[] }).jobs, []);

      // OctoPrint's own page sends print after the file.
      const printed = await octoUpload("olga", [
        ["file", [cube, "hook.gcode"]],
        ["print", "true"],
      ]);
      assert.equal(printed.status, 201);
      const ferry = printed.body.ferry as { duplicate: boolean; jobs: { id: string; state: string }[] };
      assert.equal(ferry.duplicate, true);
      assert.deepEqual(
        ferry.jobs.map((j) => j.state),
        ["queued"],
      );
      const job = await call<JobBody>("olga", `/api/v1/jobs/${ferry.jobs[0]?.id ?? ""}`);
      assert.equal(job.body.owner, "olga");
      await call("olga", `/api/v1/jobs/${job.body.id}/cancel`, { method: "POST" });
    });

    test("an STL is 415, a folder 400, a viewer 403", async () => {
      const stl = await octoUpload("alice", [["file", [Buffer.from("solid x\n"), "cube10.stl"]]]);
      assert.equal(stl.status, 415);
      assert.match(stl.body.detail, /cube10\.stl: not a print file/);
      const folder = await octoUpload("alice", [
        ["foldername", "parts"],
        ["path", ""],
      ]);
      assert.equal(folder.status, 400);
      assert.match(folder.body.detail, /no folders/);
      assert.equal((await octoUpload("wall", [["file", [cube, "x.gcode"]]])).status, 403);
    });
  });

  describe("printers", () => {
    test("an admin adds, edits and retires a printer without a restart; it is kept in the store", async () => {
      const added = await call<PrinterBody>("admin", "/api/v1/printers", {
        method: "POST",
        body: {
          name: "mk4-x",
          type: "prusalink",
          options: { url: "http://127.0.0.1:1", password: "secret-pw" },
          model: "MK4",
          tags: ["PLA"],
        },
      });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      assert.deepEqual(
        [added.body.name, added.body.type, added.body.source, added.body.model, added.body.tags],
        ["mk4-x", "prusalink", "api", "MK4", ["PLA"]],
      );
      assert.ok(!JSON.stringify(added.body).includes("secret-pw"), "credentials are never shown");
      assert.deepEqual(
        (await t.app.stored.deviceConfigs.all()).map((r) => [r.name, r.options.model, r.options.farm]),
        [["mk4-x", "MK4", true]],
      );
      const names = (await call<PrinterBody[]>("wall", "/api/v1/printers")).body.map((p) => p.name);
      assert.deepEqual(names, ["yaml-1", "mk4-x"]);

      const edited = await call<PrinterBody>("admin", "/api/v1/printers/mk4-x", {
        method: "PATCH",
        body: { tags: ["PETG"], model: null },
      });
      assert.equal(edited.status, 200, JSON.stringify(edited.body));
      assert.deepEqual([edited.body.tags, edited.body.model], [["PETG"], null]);
      const stored = (await t.app.stored.deviceConfigs.all())[0]?.options;
      assert.equal(stored?.password, "secret-pw", "options not given are kept");

      const bad = await call("admin", "/api/v1/printers", {
        method: "POST",
        body: { name: "mk4-y", type: "prusalink", options: { url: "not a url" } },
      });
      assert.equal(bad.status, 422);
      assert.match(bad.body.detail, /device "mk4-y": url/);
      const taken = await call("admin", "/api/v1/printers", {
        method: "POST",
        body: { name: "yaml-1", type: "prusalink", options: { url: "http://127.0.0.1:1" } },
      });
      assert.equal(taken.status, 409);
      assert.match(taken.body.detail, /yaml-1" exists already \(in .*ferry\.yaml\)/);
      assert.equal((await call("olga", "/api/v1/printers/mk4-x", { method: "DELETE" })).status, 403);

      assert.equal((await call("admin", "/api/v1/printers/mk4-x", { method: "DELETE" })).status, 204);
      const gone = await call("wall", "/api/v1/printers/mk4-x");
      assert.equal(gone.status, 404);
      assert.match(gone.body.detail, /there is no farm printer mk4-x/);
      assert.deepEqual(await t.app.stored.deviceConfigs.all(), []);
    });

    test("a ferry.yaml printer is changed and retired there, not through the API", async () => {
      const edit = await call("admin", "/api/v1/printers/yaml-1", { method: "PATCH", body: { tags: ["x"] } });
      assert.equal(edit.status, 409);
      assert.match(edit.body.detail, /yaml-1 is defined in .*ferry\.yaml; change it there/);
      const retire = await call("admin", "/api/v1/printers/yaml-1", { method: "DELETE" });
      assert.equal(retire.status, 409);
      assert.match(retire.body.detail, /remove it there/);
    });

    test("actions: bed clear, maintenance on and off; pause without a job is 409 naming why", async () => {
      const clear = await call<PrinterBody>("olga", "/api/v1/printers/yaml-1/bed-clear", { method: "POST" });
      assert.equal(clear.status, 200);
      assert.equal(clear.body.bedClear, true);
      const on = await call<PrinterBody>("olga", "/api/v1/printers/yaml-1/maintenance", {
        method: "PUT",
        body: { reason: "nozzle swap" },
      });
      assert.deepEqual(on.body.maintenance && [on.body.maintenance.reason, on.body.maintenance.by], [
        "nozzle swap",
        "olga",
      ]);
      const off = await call<PrinterBody>("olga", "/api/v1/printers/yaml-1/maintenance", {
        method: "DELETE",
      });
      assert.equal(off.body.maintenance, null);
      for (const action of ["pause", "resume", "cancel"]) {
        const none = await call("olga", `/api/v1/printers/yaml-1/${action}`, { method: "POST" });
        assert.equal(none.status, 409, `${action}: ${JSON.stringify(none.body)}`);
        assert.match(none.body.detail, new RegExp(`printer yaml-1 has no job to ${action}`));
      }
      const unknown = await call("olga", "/api/v1/printers/nope/bed-clear", { method: "POST" });
      assert.equal(unknown.status, 404);
      assert.match(unknown.body.detail, /no farm printer nope/);
      assert.equal(
        (await call("alice", "/api/v1/printers/yaml-1/bed-clear", { method: "POST" })).status,
        403,
      );
    });
  });
});
