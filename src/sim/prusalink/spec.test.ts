/**
 * The simulator's JSON answers against the PrusaLink OpenAPI schemas. The spec is read from
 * ../shared/specs/prusalink/openapi.yaml beside the repository (never copied into it). The tests
 * check the answers' behaviour and collect them; the last one validates them all against the spec,
 * and is the one test reported skipped where the spec is not beside the repository (failed under
 * FERRY_REQUIRE_SERVERS=1, as in CI, which copies ../shared beside its clone).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test, type TestContext } from "node:test";
import { Ajv, type ValidateFunction } from "ajv";
import { parse } from "yaml";
import { serversRequired } from "../../../test/servers/common.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { PrusaLinkSim } from "./index.ts";

const SPEC_URL = new URL("../../../../shared/specs/prusalink/openapi.yaml", import.meta.url);
const API_KEY = "spec-key";

/**
 * The spec's `oneOf` lists (folder children, the file GET answer, Job's serial/file variants) have
 * no discriminator and overlapping alternatives whose properties are all optional, so under JSON
 * Schema no instance could match exactly one of them. They are read as `anyOf`, the only
 * satisfiable reading.
 */
function oneOfAsAnyOf(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(oneOfAsAnyOf);
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) => [k === "oneOf" ? "anyOf" : k, oneOfAsAnyOf(v)]),
  );
}

/** The spec, or undefined when it is not beside the repository (any other failure is an error). */
async function loadSpec(): Promise<Ajv | undefined> {
  let text: string;
  try {
    text = await readFile(SPEC_URL, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(oneOfAsAnyOf(parse(text)) as object, "prusalink");
  return ajv;
}

const pointer = (path: string) => path.replaceAll("~", "~0").replaceAll("/", "~1");
const responseSchema = (path: string, method = "get", status = 200) =>
  `prusalink#/paths/${pointer(path)}/${method}/responses/${status}/content/application~1json/schema`;
const component = (name: string) => `prusalink#/components/schemas/${name}`;

async function get(sim: PrusaLinkSim, path: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(sim.url + path, { headers: { "X-Api-Key": API_KEY, Accept: "application/json" } });
  const text = await res.text();
  return { status: res.status, json: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

async function put(
  sim: PrusaLinkSim,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(sim.url + path, {
    method: "PUT",
    headers: { "X-Api-Key": API_KEY, ...headers },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

void describe("PrusaLink simulator answers match the OpenAPI schemas", () => {
  let ajv: Ajv | undefined;
  let clock = Date.UTC(2025, 0, 1);
  const sims: PrusaLinkSim[] = [];

  before(async () => {
    ajv = await loadSpec();
    for (const model of ["MK4", "MK3"] as const) {
      sims.push(await PrusaLinkSim.start({ model, apiKey: API_KEY, clock: () => clock }));
    }
  });
  after(async () => {
    await Promise.all(sims.map((sim) => sim.close()));
  });

  /** Answers seen by the tests below, validated together by the last test. */
  const answers: { ref: string; value: unknown; test: string }[] = [];
  function check(t: TestContext, ref: string, value: unknown): void {
    answers.push({ ref, value, test: t.name });
  }

  for (const model of ["MK4", "MK3"] as const) {
    void test(`${model}: version, info, storage, status while idle`, async (t) => {
      const sim = sims[model === "MK4" ? 0 : 1] as PrusaLinkSim;
      check(t, component("Version"), (await get(sim, "/api/version")).json);
      check(t, component("Info"), (await get(sim, "/api/v1/info")).json);
      const storage = await get(sim, "/api/v1/storage");
      check(t, responseSchema("/api/v1/storage"), storage.json);
      const list = (storage.json as { storage_list: { path: string; type: string }[] }).storage_list;
      assert.deepEqual(
        list.map((s) => [s.path, s.type]),
        model === "MK4"
          ? [["/usb", "USB"]]
          : [
              ["/local", "LOCAL"],
              ["/sdcard", "SDCARD"],
            ],
      );
      const status = (await get(sim, "/api/v1/status")).json as { printer: { state: string } };
      check(t, responseSchema("/api/v1/status"), status);
      assert.equal(status.printer.state, "IDLE");
      assert.equal((await get(sim, "/api/v1/job")).status, 204);
      assert.equal((await get(sim, "/api/v1/transfer")).status, 204);
    });

    void test(`${model}: files, folders, a job and a transfer`, async (t) => {
      const sim = sims[model === "MK4" ? 0 : 1] as PrusaLinkSim;
      const root = model === "MK4" ? "usb" : "local";
      assert.equal(
        await put(sim, `/api/v1/files/${root}/examples/Spice%20Harvester.gcode`, "G28\n", {
          "Create-Folder": "?1",
        }),
        201,
      );
      assert.equal(await put(sim, `/api/v1/files/${root}/examples/notes.txt`, "hello"), 415, "Not a GCODE");
      sim.putFile("examples/notes.txt", "hello");
      assert.equal(await put(sim, `/api/v1/files/${root}/examples/empty/`, ""), 201);

      const folder = await get(sim, `/api/v1/files/${root}/examples`);
      check(t, component("FolderInfo"), folder.json);
      check(t, responseSchema("/api/v1/files/{storage}/{path}"), folder.json);
      const children = (folder.json as { children: Record<string, unknown>[] }).children;
      assert.equal(children.length, 3);
      for (const child of children) assert.equal("size" in child, false, "folder children carry no size");
      const rootListing = await get(sim, `/api/v1/files/${root}/`);
      check(t, component("FolderInfo"), rootListing.json);

      const printFile = await get(sim, `/api/v1/files/${root}/examples/Spice%20Harvester.gcode`);
      check(t, component("PrintFileInfo"), printFile.json);
      assert.equal((printFile.json as { size: number }).size, 4);
      check(t, component("FileInfo"), (await get(sim, `/api/v1/files/${root}/examples/notes.txt`)).json);

      sim.startPrint("examples/Spice Harvester.gcode", 100);
      clock += 25_000;
      const job = await get(sim, "/api/v1/job");
      check(t, component("Job"), job.json);
      assert.equal((job.json as { progress: number }).progress, 25);
      const printing = await get(sim, "/api/v1/status");
      check(t, responseSchema("/api/v1/status"), printing.json);
      check(t, component("StatusJob"), (printing.json as { job: unknown }).job);
      clock += 100_000;
      const finished = await get(sim, "/api/v1/job");
      check(t, component("Job"), finished.json);
      assert.equal((finished.json as { state: string }).state, "FINISHED");
      sim.setState("IDLE");

      // A transfer is visible while an upload runs (held by the simulator until the checks are done).
      sim.holdUploads();
      const upload = put(sim, `/api/v1/files/${root}/big.gcode`, Buffer.alloc(150_000));
      await waitFor("the upload to show as the transfer", () => sim.transfer());
      const transfer = await get(sim, "/api/v1/transfer");
      assert.equal(transfer.status, 200);
      check(t, component("Transfer"), transfer.json);
      const status = await get(sim, "/api/v1/status");
      check(t, component("StatusTransfer"), (status.json as { transfer: unknown }).transfer);
      check(t, component("StatusStorage"), (status.json as { storage: unknown }).storage);
      sim.releaseUploads();
      assert.equal(await upload, 201);
    });

    void test(`${model}: error answers`, async (t) => {
      const sim = sims[model === "MK4" ? 0 : 1] as PrusaLinkSim;
      const missing = await get(sim, "/api/v1/files/usb/nope.gcode");
      assert.equal(missing.status, 404);
      check(t, component("Error"), missing.json);
    });
  }

  void test("MK4 children are named by 8.3 aliases, MK3 children by long names", async () => {
    const [mk4, mk3] = sims as [PrusaLinkSim, PrusaLinkSim];
    const names = async (sim: PrusaLinkSim, root: string) =>
      (
        (await get(sim, `/api/v1/files/${root}/examples`)).json as {
          children: { name: string; display_name: string }[];
        }
      ).children.map((c) => [c.name, c.display_name]);
    assert.deepEqual(await names(mk4, "usb"), [
      ["SPICEH~1.GCO", "Spice Harvester.gcode"],
      ["NOTES.TXT", "notes.txt"],
      ["EMPTY", "empty"],
    ]);
    assert.deepEqual(await names(mk3, "local"), [
      ["Spice Harvester.gcode", "Spice Harvester.gcode"],
      ["notes.txt", "notes.txt"],
      ["empty", "empty"],
    ]);
  });

  void test("every answer above matches its OpenAPI schema", (t) => {
    if (!ajv) {
      const missing = `no PrusaLink OpenAPI spec at ${SPEC_URL.pathname} (it lives beside the repository, in ../shared)`;
      // CI copies ../shared beside its clone: there a missing spec is a failure, never a skip.
      if (serversRequired()) assert.fail(`FERRY_REQUIRE_SERVERS=1, but there is ${missing}`);
      t.skip(missing);
      return;
    }
    assert.ok(answers.length >= 30, `only ${answers.length} answers were collected`);
    for (const { ref, value, test: where } of answers) {
      const validate: ValidateFunction | undefined = ajv.getSchema(ref);
      assert.ok(validate, `schema ${ref} exists`);
      assert.ok(
        validate(value),
        `${where}: ${ref}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value, null, 2)}`,
      );
    }
    const status = answers.find((a) => a.ref === responseSchema("/api/v1/status"));
    const broken = { ...(status?.value as object), printer: { state: "SLEEPING" } };
    assert.equal(ajv.getSchema(responseSchema("/api/v1/status"))?.(broken), false, "the schema is applied");
  });
});
