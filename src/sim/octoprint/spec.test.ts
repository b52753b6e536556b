/**
 * The simulator's answers against OctoPrint's documents (../shared/specs/octoprint/*.rst beside the
 * repository, never copied into it). The .rst files document shapes by example: each answer is
 * compared with the example of its endpoint in the "pre 2.0.0" tab (what an OctoPrint 1.x and a
 * client that asks for no API version get): every field the example has must be there with a value
 * of the same JSON type. The few places where the server itself differs from its example are listed
 * with the reason. Reported skipped where the documents are not beside the repository (failed under
 * FERRY_REQUIRE_SERVERS=1, as in CI).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test, type TestContext } from "node:test";
import { serversRequired } from "../../../test/servers/common.ts";
import { shapeDiff } from "../../../test/support/shape.ts";
import { OctoPrintSim } from "./index.ts";

const SPECS = new URL("../../../../shared/specs/octoprint/", import.meta.url);
const KEY = "spec-key";

/** The JSON answers of one .rst file: each with its endpoint ("GET /api/job") and tab ("pre 2.0.0", "2.0.0+" or ""). */
interface Example {
  endpoint: string;
  tab: string;
  status: number;
  json: unknown;
}

/** Reads the example answers of an .rst file (trailing commas, which some examples have, are dropped). */
function examples(rst: string): Example[] {
  const out: Example[] = [];
  const lines = rst.split("\n");
  let endpoint = "";
  let tab = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const directive = /\.\. http:(get|post|delete|put)::\s+(\S+)/.exec(line);
    if (directive) endpoint = `${(directive[1] ?? "").toUpperCase()} ${directive[2] ?? ""}`;
    const tabMatch = /md-tab-item:: API version (.+)$/.exec(line);
    if (tabMatch) tab = (tabMatch[1] ?? "").trim();
    if (!/^\s*\.\. sourcecode:: http\s*$/.test(line)) continue;
    const block: string[] = [];
    let j = i + 1;
    const indent = (lines[i]?.length ?? 0) - (lines[i]?.trimStart().length ?? 0);
    for (; j < lines.length; j++) {
      const next = lines[j] ?? "";
      if (next.trim() !== "" && next.length - next.trimStart().length <= indent) break;
      block.push(next.trim());
    }
    const status = /^HTTP\/1\.1 (\d+)/.exec(block.find((l) => l !== "") ?? "");
    const start = block.findIndex((l) => l.startsWith("{"));
    if (status && start >= 0) {
      const text = block
        .slice(start)
        .join("\n")
        .replace(/,(\s*[}\]])/g, "$1");
      out.push({ endpoint, tab, status: Number(status[1]), json: JSON.parse(text) as unknown });
    }
    i = j - 1;
  }
  return out;
}

/** Documented array elements are compared with answered ones of the same `type` (a file with a file). */
const kindOf = (v: unknown) =>
  v !== null && typeof v === "object" ? (v as { type?: unknown }).type : undefined;

async function loadExamples(file: string): Promise<Example[] | undefined> {
  try {
    return examples(await readFile(new URL(file, SPECS), "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

void describe("OctoPrint simulator answers match the documents' examples", () => {
  let sim: OctoPrintSim;
  const docs = new Map<string, Example[]>();
  before(async () => {
    sim = await OctoPrintSim.start({ apiKey: KEY, clock: () => Date.UTC(2025, 0, 1) });
    for (const file of [
      "general.rst",
      "version.rst",
      "connection.rst",
      "printer.rst",
      "job.rst",
      "files.rst",
    ]) {
      const found = await loadExamples(file);
      if (found) docs.set(file, found);
    }
    const form = new FormData();
    form.append(
      "file",
      new Blob(["; estimated printing time (normal mode) = 2m 0s\nG28\n"]),
      "whistle_v2.gcode",
    );
    form.append("path", "folderA");
    assert.equal((await post("/api/files/local", form)).status, 201);
  });
  after(() => sim.close());

  const get = (path: string) => fetch(sim.url + path, { headers: { "X-Api-Key": KEY } });
  const post = (path: string, body: FormData) =>
    fetch(sim.url + path, { method: "POST", headers: { "X-Api-Key": KEY }, body });

  /** Compares an answer with the document's example of `endpoint` (the n-th in the pre-2.0.0 tab). */
  function against(
    t: TestContext,
    file: string,
    endpoint: string,
    actual: unknown,
    options: { nth?: number; skip?: Record<string, string> } = {},
  ): void {
    const found = docs.get(file);
    if (!found) {
      if (serversRequired()) assert.fail(`${file} is not beside the repository`);
      t.skip(`${file} is not beside the repository (../shared/specs/octoprint)`);
      return;
    }
    const candidates = found.filter((e) => e.endpoint === endpoint && e.tab !== "2.0.0+");
    const example = candidates[options.nth ?? 0];
    assert.ok(example, `${file} has an example answer of ${endpoint}`);
    const diff = shapeDiff(example.json, actual, { skip: options.skip ?? {}, kindOf });
    assert.deepEqual(diff, [], `${endpoint} differs from its documented example`);
  }

  void test("GET /api/version and /api/server", async (t) => {
    const version = await (await get("/api/version")).json();
    against(t, "version.rst", "GET /api/version", version);
    assert.deepEqual(Object.keys(version as object).sort(), ["api", "server", "text"]);
    const server = (await (await get("/api/server")).json()) as { version: string; safemode: null };
    assert.equal(server.safemode, null);
    assert.equal(server.version, (version as { server: string }).server);
  });

  void test("GET /api/connection", async (t) => {
    against(t, "connection.rst", "GET /api/connection", await (await get("/api/connection")).json());
  });

  void test("GET /api/printer", async (t) => {
    const answer = await (await get("/api/printer?history=true&limit=2")).json();
    against(t, "printer.rst", "GET /api/printer", answer, {
      skip: {
        // The document's printer has two tools and reports `storage` (2.0's name); 1.x says `sd`.
        ".temperature.tool1": "one tool",
        ".temperature.history[].tool1": "one tool",
        ".storage": "pre-2.0.0 answers `sd`",
      },
    });
    assert.deepEqual((answer as { sd: unknown }).sd, { ready: false });
  });

  void test("GET /api/job while printing", async (t) => {
    sim.startPrint("folderA/whistle_v2.gcode");
    const answer = await (await get("/api/job")).json();
    against(t, "job.rst", "GET /api/job", answer, {
      // Filament use comes from OctoPrint's G-code analysis, which the simulator does not make.
      skip: { ".job.filament": "no filament analysis" },
    });
    sim.printer.cancel();
  });

  void test("GET /api/files/local and ?recursive=true", async (t) => {
    const flat = (await (await get("/api/files/local")).json()) as { files: { children?: unknown[] }[] };
    assert.deepEqual(flat.files[0]?.children, [], "a folder's children are left out without recursive");
    const recursive = await (await get("/api/files/local?recursive=true")).json();
    const skip = {
      // OctoPrint's documents call the print statistics `print`; the server sends `prints` (files.py).
      ".files[].print": "the server says prints",
      ".files[].children[].print": "the server says prints",
      ".files[].gcodeAnalysis.filament": "no filament analysis",
      ".files[].children[].gcodeAnalysis.filament": "no filament analysis",
    };
    against(t, "files.rst", "GET /api/files/(string:storage)", flat, { skip });
    // The example's `"free": "3.2GB"` is older than the server, which sends bytes (its schema: int).
    against(t, "files.rst", "GET /api/files", recursive, { nth: 1, skip: { ...skip, ".free": "bytes" } });
    assert.equal(typeof (recursive as { free: unknown }).free, "number");
  });

  void test("upload and folder creation answers", async (t) => {
    const form = new FormData();
    form.append("file", new Blob(["G28\n"]), "20mm-ümläut-böx.gcode");
    form.append("select", "true");
    form.append("print", "true");
    const uploaded = await post("/api/files/local", form);
    assert.equal(uploaded.status, 201);
    assert.match(
      uploaded.headers.get("location") ?? "",
      /\/api\/files\/local\/20mm-%C3%BCml%C3%A4ut-b%C3%B6x\.gcode$/,
    );
    const answer = (await uploaded.json()) as { effectivePrint: boolean };
    against(t, "files.rst", "POST /api/files/(string:storage)", answer, {
      // The document's example uploads to the printer's SD card; a local upload is answered under `local`.
      skip: { ".files.printer": "uploaded to local" },
    });
    assert.equal(answer.effectivePrint, true);
    sim.printer.cancel();
    const folder = new FormData();
    folder.append("foldername", "subfolder");
    folder.append("path", "folderA/");
    const created = await post("/api/files/local", folder);
    assert.equal(created.status, 201);
    against(t, "files.rst", "POST /api/files/(string:storage)", await created.json(), { nth: 2 });
  });

  void test("a file's details", async (t) => {
    const answer = await (await get("/api/files/local/folderA/whistle_v2.gcode")).json();
    against(t, "files.rst", "GET /api/files/(string:location)/(path:filename)", answer, {
      skip: { ".print": "the server says prints", ".gcodeAnalysis.filament": "no filament analysis" },
    });
  });
});
