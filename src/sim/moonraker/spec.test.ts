/**
 * The simulator's answers against Moonraker's documents (../shared/specs/moonraker/*.md beside the
 * repository, never copied into it). The documents show each endpoint's answer by example (the
 * `result` of the `{result: …}` Moonraker wraps it in) and each printer object by example: every
 * field an example has must be there with a value of the same JSON type. Where the server itself
 * differs from its example, the place is listed with the reason. Reported skipped where the
 * documents are not beside the repository (failed under FERRY_REQUIRE_SERVERS=1, as in CI).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, test, type TestContext } from "node:test";
import WebSocket from "ws";
import { serversRequired } from "../../../test/servers/common.ts";
import { jsonType, shapeDiff, type ShapeOptions } from "../../../test/support/shape.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { MoonrakerSim } from "./index.ts";

const SPECS = new URL("../../../../shared/specs/moonraker/", import.meta.url);
const KEY = "spec-key";

/** One section of a document: its heading, its HTTP requests ("GET /server/info") and example answers. */
interface Section {
  heading: string;
  requests: string[];
  examples: unknown[];
}

/** The sections of a Markdown document, with the JSON (or text) of their example blocks. */
function sections(markdown: string): Section[] {
  const out: Section[] = [];
  let current: Section | undefined;
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const heading = /^#{2,3} (.+)$/.exec(line);
    if (heading) {
      current = { heading: (heading[1] ?? "").trim(), requests: [], examples: [] };
      out.push(current);
      continue;
    }
    const fence = /^```\{(.*)\}\s*$/.exec(line);
    if (!fence || !current) continue;
    const block: string[] = [];
    for (i++; i < lines.length && !(lines[i] ?? "").startsWith("```"); i++) block.push(lines[i] ?? "");
    const attributes = fence[1] ?? "";
    if (attributes.includes(".apirequest") && attributes.includes('title="HTTP Request"')) {
      const request = /^(GET|POST|DELETE|PUT) (\S+?)`?$/.exec((block[0] ?? "").trim());
      if (request) current.requests.push(`${request[1]} ${(request[2] ?? "").split("?")[0]}`);
    } else if (attributes.includes(".apiresponse") || attributes.includes("Printer Object Example")) {
      const text = block.join("\n").trim();
      try {
        current.examples.push(JSON.parse(text.replace(/,(\s*[}\]])/g, "$1")) as unknown);
      } catch {
        current.examples.push(text);
      }
    }
  }
  return out;
}

async function load(file: string): Promise<Section[] | undefined> {
  try {
    return sections(await readFile(new URL(file, SPECS), "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

void describe("Moonraker simulator answers match the documents' examples", () => {
  let now = Date.UTC(2025, 0, 1);
  let sim: MoonrakerSim;
  const docs = new Map<string, Section[]>();

  before(async () => {
    sim = await MoonrakerSim.start({ apiKey: KEY, clock: () => now });
    for (const file of ["server.md", "printer.md", "printer_objects.md", "file_manager.md", "job_queue.md"]) {
      const found = await load(file);
      if (found) docs.set(file, found);
    }
    const uploaded = await upload(
      "tools/drill.gcode",
      "; estimated printing time (normal mode) = 2m 0s\nG28\n",
    );
    assert.equal(uploaded.status, 201);
  });
  after(() => sim.close());

  const headers = { "X-Api-Key": KEY };
  const call = async (method: string, path: string, json?: unknown) => {
    const res = await fetch(sim.url + path, {
      method,
      headers: json === undefined ? headers : { ...headers, "Content-Type": "application/json" },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
  };
  const result = async (method: string, path: string, json?: unknown) => {
    const answer = await call(method, path, json);
    assert.equal(answer.status, 200, `${method} ${path}: ${JSON.stringify(answer.json)}`);
    assert.deepEqual(Object.keys(answer.json), ["result"], "answers are wrapped in {result}");
    return answer.json.result;
  };
  function upload(path: string, content: string, fields: Record<string, string> = {}) {
    const form = new FormData();
    const slash = path.lastIndexOf("/");
    if (slash >= 0) form.append("path", path.slice(0, slash));
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", new Blob([content]), path.slice(slash + 1));
    return fetch(`${sim.url}/server/files/upload`, { method: "POST", headers, body: form });
  }

  /** The document's n-th example of a request ("GET /server/info") or section heading, or undefined (skipped). */
  function example(t: TestContext, file: string, what: string, nth = 0): unknown {
    const found = docs.get(file);
    if (!found) {
      if (serversRequired()) assert.fail(`${file} is not beside the repository`);
      t.skip(`${file} is not beside the repository (../shared/specs/moonraker)`);
      return undefined;
    }
    const section = found.find((s) => s.heading === what || s.requests.includes(what));
    assert.ok(section, `${file} documents ${what}`);
    const doc: unknown = section.examples[nth];
    assert.ok(doc !== undefined, `${file} has an example answer of ${what}`);
    return doc;
  }

  function against(
    t: TestContext,
    file: string,
    what: string,
    actual: unknown,
    options: ShapeOptions & { nth?: number } = {},
  ) {
    const doc = example(t, file, what, options.nth);
    if (doc === undefined) return;
    assert.deepEqual(shapeDiff(doc, actual, options), [], `${what} differs from its documented example`);
  }

  void test("server.info and printer.info", async (t) => {
    against(t, "server.md", "GET /server/info", await result("GET", "/server/info"));
    against(t, "printer.md", "GET /printer/info", await result("GET", "/printer/info"));
  });

  void test("printer objects: the list, a query, and each object Ferry reads", async (t) => {
    const list = (await result("GET", "/printer/objects/list")) as { objects: string[] };
    against(t, "printer.md", "GET /printer/objects/list", list);
    const query = await result("POST", "/printer/objects/query", {
      objects: { gcode_move: null, toolhead: ["position", "status"] },
    });
    // Klipper dropped toolhead.status (idle_timeout.state says it); an unknown field is left out.
    against(t, "printer.md", "POST /printer/objects/query", query, {
      skip: { ".status.toolhead.status": "no longer in Klipper" },
    });
    sim.startPrint("tools/drill.gcode");
    const names = [
      "webhooks",
      "print_stats",
      "virtual_sdcard",
      "extruder",
      "heater_bed",
      "idle_timeout",
      "display_status",
    ];
    const all = (await result("POST", "/printer/objects/query", {
      objects: Object.fromEntries([...names, "filament_switch_sensor runout_sensor"].map((n) => [n, null])),
    })) as { status: Record<string, unknown> };
    for (const name of names) {
      assert.ok(list.objects.includes(name), `${name} is listed`);
      against(t, "printer_objects.md", name, all.status[name]);
    }
    against(
      t,
      "printer_objects.md",
      "filament_switch_sensor",
      all.status["filament_switch_sensor runout_sensor"],
    );
    assert.equal((all.status.print_stats as { state: string }).state, "printing");
    assert.equal((all.status.print_stats as { filename: string }).filename, "tools/drill.gcode");
    sim.printer.cancel();
    assert.deepEqual(
      (
        (await result("GET", "/printer/objects/query?print_stats=state")) as {
          status: { print_stats: unknown };
        }
      ).status.print_stats,
      { state: "cancelled" },
      "the query string form names fields",
    );
  });

  void test("the websocket: identify, subscribe, and notify_status_update pushed as the printer changes", async (t) => {
    const ws = new WebSocket(`${sim.url.replace("http", "ws")}/websocket`, { headers });
    const messages: Record<string, unknown>[] = [];
    ws.on("message", (data: Buffer) =>
      messages.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>),
    );
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    try {
      let id = 0;
      const rpc = async (method: string, params?: unknown) => {
        const mine = ++id;
        ws.send(JSON.stringify({ jsonrpc: "2.0", method, params, id: mine }));
        return waitFor(`the answer to ${method}`, () => messages.find((m) => m.id === mine));
      };
      const identified = await rpc("server.connection.identify", {
        client_name: "spec",
        version: "1",
        type: "other",
        url: "http://example.invalid",
      });
      assert.equal(typeof (identified.result as { connection_id: unknown }).connection_id, "number");
      const subscribed = await rpc("printer.objects.subscribe", {
        objects: { gcode_move: null, toolhead: ["position", "status"], print_stats: ["state"] },
      });
      against(t, "printer.md", "Subscribe to printer object status updates", subscribed.result, {
        skip: { ".status.toolhead.status": "no longer in Klipper" },
      });
      sim.startPrint("tools/drill.gcode");
      const update = await waitFor("a notify_status_update of print_stats", () =>
        messages.find(
          (m) =>
            m.method === "notify_status_update" &&
            (m.params as [Record<string, { state?: string }>])[0].print_stats?.state === "printing",
        ),
      );
      const params = update.params as unknown[];
      assert.deepEqual(params.map(jsonType), ["object", "number"], "[changed fields, eventtime]");
      assert.equal("id" in update, false, "a notification has no id");
      const notFound = await rpc("no.such.method");
      assert.deepEqual(notFound.error, { code: -32601, message: "Method not found" });
      sim.printer.cancel();
    } finally {
      ws.terminate();
    }
  });

  void test("files: list, metadata, directory, roots", async (t) => {
    const list = await result("GET", "/server/files/list?root=gcodes");
    against(t, "file_manager.md", "GET /server/files/list", list);
    against(
      t,
      "file_manager.md",
      "GET /server/files/directory",
      await result("GET", "/server/files/directory?path=gcodes"),
    );
    against(t, "file_manager.md", "GET /server/files/roots", await result("GET", "/server/files/roots"));
    const metadata = (await result("GET", "/server/files/metadata?filename=tools/drill.gcode")) as Record<
      string,
      unknown
    >;
    // Moonraker leaves out what the slicer did not write: every field sent is documented, with its type.
    const doc = example(t, "file_manager.md", "GET /server/files/metadata") as
      Record<string, unknown> | undefined;
    if (doc) {
      for (const [field, value] of Object.entries(metadata)) {
        assert.ok(field in doc, `metadata field ${field} is documented`);
        if (doc[field] !== null && value !== null) assert.equal(jsonType(value), jsonType(doc[field]), field);
      }
      for (const field of [
        "size",
        "modified",
        "uuid",
        "estimated_time",
        "job_id",
        "print_start_time",
        "filename",
      ])
        assert.ok(field in metadata, `metadata has ${field}`);
    }
    assert.equal(metadata.estimated_time, 120);
    assert.equal((await call("GET", "/server/files/metadata?filename=nope.gcode")).status, 404);
  });

  void test("upload: the answer, Location, a sha256 checksum checked (mismatch 422), the printed file refused", async (t) => {
    const content = "G28\nG1 X10\n";
    const sha256 = createHash("sha256").update(content).digest("hex");
    const res = await upload("parts/новая деталь.gcode", content, { checksum: sha256 });
    assert.equal(res.status, 201);
    assert.match(res.headers.get("location") ?? "", /\/server\/files\/gcodes\/parts\/%D0%BD/);
    const answer = await res.json();
    against(t, "file_manager.md", "POST /server/files/upload", answer);
    assert.deepEqual(Object.keys(answer as object).includes("result"), false, "an upload answers unwrapped");

    const bad = await upload("parts/bad.gcode", content, { checksum: "0".repeat(64) });
    assert.equal(bad.status, 422);
    assert.match(JSON.stringify(await bad.json()), /checksum mismatch/i);
    assert.equal(
      sim.files().some((f) => f.path === "parts/bad.gcode"),
      false,
      "nothing stored",
    );

    sim.startPrint("parts/новая деталь.gcode");
    const replaced = await upload("parts/новая деталь.gcode", "G28\n");
    assert.equal(replaced.status, 403);
    const deleted = await call(
      "DELETE",
      `/server/files/gcodes/${encodeURIComponent("parts")}/${encodeURIComponent("новая деталь.gcode")}`,
    );
    assert.equal(deleted.status, 403, "the printed file cannot be deleted");
    sim.printer.cancel();
    const removed = await call(
      "DELETE",
      `/server/files/gcodes/parts/${encodeURIComponent("новая деталь.gcode")}`,
    );
    assert.equal(removed.status, 200);
    assert.equal((removed.json.result as { action: string }).action, "delete_file");
  });

  void test("print control answers ok, as Klipper does, even with nothing to do", async (t) => {
    for (const action of ["pause", "resume", "cancel"]) {
      const path = `/printer/print/${action}`;
      assert.equal(await result("POST", path), "ok");
      assert.equal(example(t, "printer.md", `POST ${path}`), "ok");
    }
    assert.equal(await result("POST", "/printer/print/start?filename=tools/drill.gcode"), "ok");
    assert.equal(sim.state(), "printing");
    await result("POST", "/printer/print/pause");
    assert.equal(sim.state(), "paused");
    await result("POST", "/printer/print/cancel");
    assert.equal(sim.state(), "cancelled");
  });

  void test("the job queue", async (t) => {
    now += 1_000;
    const status = await result("GET", "/server/job_queue/status");
    against(t, "job_queue.md", "GET /server/job_queue/status", status);
    const posted = (await result("POST", "/server/job_queue/job", {
      filenames: ["tools/drill.gcode", "tools/drill.gcode"],
    })) as {
      queued_jobs: { job_id: string }[];
    };
    against(t, "job_queue.md", "POST /server/job_queue/job", posted);
    assert.equal(posted.queued_jobs.length, 2);
    const ids = posted.queued_jobs.map((j) => j.job_id).join(",");
    const removed = await result("DELETE", `/server/job_queue/job?job_ids=${ids}`);
    against(t, "job_queue.md", "DELETE /server/job_queue/job", removed);
    assert.deepEqual((removed as { queued_jobs: unknown[] }).queued_jobs, []);
    against(
      t,
      "job_queue.md",
      "POST /server/job_queue/pause",
      await result("POST", "/server/job_queue/pause"),
    );
  });

  void test("authorization: no key is 401 over HTTP", async () => {
    const res = await fetch(`${sim.url}/server/info`);
    assert.equal(res.status, 401);
  });
});
