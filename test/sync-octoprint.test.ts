/**
 * `ferry sync` end to end onto OctoPrint: the real CLI in its own process against simulated
 * OctoPrint servers, their file lists read back through OctoPrint's own API (display names).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { OctoPrintSim } from "../src/sim/octoprint/index.ts";
import { STOCK_EXTENSIONS } from "../src/sim/octoprint/names.ts";

const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;
const KEY = "octo-farm-key-7";

interface Summary {
  targets: {
    target: string;
    outcome: string;
    planned: number;
    done: number;
    failed: number;
    skipped: number;
    state?: string;
    errors?: unknown[];
  }[];
}

function syncJson(
  cwd: string,
  ...args: string[]
): Promise<{ code: number; summary: Summary; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, "sync", "--json", ...args],
      { cwd, env: { ...process.env, OCTO_KEY: KEY, FERRY_LOG_LEVEL: "error" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, summary: JSON.parse(stdout) as Summary, output: stdout + stderr });
      },
    );
  });
}

/** Every file as OctoPrint lists it: display names from the root down, and sizes. */
async function filesOf(sim: OctoPrintSim): Promise<string[]> {
  interface Wire {
    type: string;
    name: string;
    display?: string;
    size?: number;
    children?: Wire[];
  }
  const res = await fetch(`${sim.url}/api/files/local?recursive=true`, { headers: { "X-Api-Key": KEY } });
  const walk = (prefix: string, entries: Wire[]): string[] =>
    entries.flatMap((e) => {
      const path = `${prefix}${(e.display ?? e.name).normalize("NFC")}`;
      return e.type === "folder" ? walk(`${path}/`, e.children ?? []) : [`${path}:${e.size ?? -1}`];
    });
  return walk("", ((await res.json()) as { files: Wire[] }).files).sort();
}

const SOURCE: Record<string, number> = {
  "benchy.gcode": 20_000,
  "calibration/first layer.gcode": 5_000,
  "calibration/deep/nested/tower.bgcode": 12_345,
  "Клиенты/кронштейн для полки.gcode": 7_000,
  ".profiles/PLA 0.2mm.gcode": 3_000,
};
const expected = (source: Record<string, number>, only?: (path: string) => boolean) =>
  Object.entries(source)
    .filter(([p]) => only?.(p) ?? true)
    .map(([p, s]) => `${p}:${s}`)
    .sort();

void describe("ferry sync onto OctoPrint", () => {
  let dir: string;
  let withPlugin: OctoPrintSim;
  let stock: OctoPrintSim;
  const source = { ...SOURCE };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-octo-"));
    for (const [path, size] of Object.entries(source)) {
      await mkdir(join(dir, "master", path, ".."), { recursive: true });
      await writeFile(join(dir, "master", path), Buffer.alloc(size, path.length));
    }
    // One server with the OctoPrint-BGCode plugin, one as it comes (no .bgcode).
    withPlugin = await OctoPrintSim.start({ apiKey: KEY, extensions: [...STOCK_EXTENSIONS, "bgcode"] });
    stock = await OctoPrintSim.start({ apiKey: KEY });
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "devices:",
        `  octo-1: { type: octoprint, url: "${withPlugin.url}", api_key: "\${OCTO_KEY}" }`,
        `  octo-2: { type: octoprint, url: "${stock.url}", api_key: "\${OCTO_KEY}" }`,
        "groups:",
        "  farm: [octo-1, octo-2]",
        "syncs:",
        '  gcode: { source: ./master, targets: [farm], mode: mirror, include: ["**/*.gcode", "**/*.bgcode"], when: idle }',
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await Promise.all([withPlugin.close(), stock.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  test("mirrors nested, dotted and Cyrillic names; a stock OctoPrint refuses .bgcode; a re-run plans nothing new", async () => {
    const first = await syncJson(dir);
    assert.doesNotMatch(first.output, new RegExp(KEY), "the API key is never printed");
    const [one, two] = first.summary.targets;
    assert.deepEqual([one?.target, one?.outcome, one?.done, one?.failed], ["octo-1", "done", 5, 0]);
    assert.deepEqual([two?.target, two?.done, two?.failed], ["octo-2", 4, 1], JSON.stringify(two));
    assert.deepEqual(await filesOf(withPlugin), expected(source));
    assert.deepEqual(
      await filesOf(stock),
      expected(source, (p) => !p.endsWith(".bgcode")),
    );
    const second = await syncJson(dir, "-p", "octo-1");
    assert.equal(second.code, 0);
    assert.equal(second.summary.targets[0]?.planned, 0, "octo-1 is up to date");
  });

  test("a printing printer is skipped; --include-busy syncs it and leaves the printed file alone", async () => {
    withPlugin.startPrint("benchy.gcode");
    delete source["benchy.gcode"];
    await rm(join(dir, "master", "benchy.gcode"));
    source["new part.gcode"] = 4_321;
    await writeFile(join(dir, "master", "new part.gcode"), Buffer.alloc(4_321, 1));

    const gated = await syncJson(dir, "-p", "octo-1");
    assert.equal(gated.code, 0, "skipped-busy is not a failure");
    assert.deepEqual(
      gated.summary.targets.map((t) => [t.target, t.outcome, t.state]),
      [["octo-1", "skipped", "Printing"]],
    );
    assert.ok((await filesOf(withPlugin)).includes("benchy.gcode:20000"));

    const forced = await syncJson(dir, "-p", "octo-1", "--include-busy");
    assert.equal(forced.code, 0, forced.output);
    assert.deepEqual(await filesOf(withPlugin), [...expected(source), "benchy.gcode:20000"].sort());
    withPlugin.printer.cancel();
  });
});
