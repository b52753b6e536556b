/**
 * `ferry sync` end to end onto a farm of three vendors, one simulated printer each: PrusaLink
 * (MK4), OctoPrint (with the BGCode plugin) and Moonraker (Klipper, no API key). The real CLI runs
 * in its own process; each printer's files are read back through its own API, never through
 * Ferry's adapters.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MoonrakerSim } from "../src/sim/moonraker/index.ts";
import { OctoPrintSim } from "../src/sim/octoprint/index.ts";
import { STOCK_EXTENSIONS } from "../src/sim/octoprint/names.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";

const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;
const PRUSA_PASSWORD = "prusa-farm-pw";
const OCTO_KEY = "octo-farm-key";

interface Summary {
  targets: {
    target: string;
    outcome: string;
    planned: number;
    done: number;
    failed: number;
    state?: string;
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
      { cwd, env: { ...process.env, PRUSA_PASSWORD, OCTO_KEY, FERRY_LOG_LEVEL: "error" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, summary: JSON.parse(stdout) as Summary, output: stdout + stderr });
      },
    );
  });
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, { headers });
  assert.equal(res.status, 200, `GET ${url}: ${res.status}`);
  return res.json();
}

/** PrusaLink's /api/v1/files, folder by folder (8.3 names to ask by, long names shown), a GET per file for its size. */
async function prusaFiles(sim: PrusaLinkSim): Promise<string[]> {
  interface Child {
    name: string;
    display_name: string;
    type: string;
  }
  const headers = { "X-Api-Key": PRUSA_PASSWORD };
  const walk = async (at: string, shown: string): Promise<string[]> => {
    const folder = (await getJson(`${sim.url}/api/v1/files/usb/${at}`, headers)) as { children: Child[] };
    const out: string[] = [];
    for (const child of folder.children) {
      const path = `${at}${encodeURIComponent(child.name)}`;
      const name = `${shown}${child.display_name.normalize("NFC")}`;
      if (child.type === "FOLDER") out.push(...(await walk(`${path}/`, `${name}/`)));
      else {
        const file = (await getJson(`${sim.url}/api/v1/files/usb/${path}`, headers)) as { size: number };
        out.push(`${name}:${file.size}`);
      }
    }
    return out;
  };
  return (await walk("", "")).sort();
}

/** OctoPrint's recursive listing of its uploads folder, by display names. */
async function octoFiles(sim: OctoPrintSim): Promise<string[]> {
  interface Wire {
    type: string;
    name: string;
    display?: string;
    size?: number;
    children?: Wire[];
  }
  const answer = (await getJson(`${sim.url}/api/files/local?recursive=true`, { "X-Api-Key": OCTO_KEY })) as {
    files: Wire[];
  };
  const walk = (prefix: string, entries: Wire[]): string[] =>
    entries.flatMap((e) => {
      const path = `${prefix}${(e.display ?? e.name).normalize("NFC")}`;
      return e.type === "folder" ? walk(`${path}/`, e.children ?? []) : [`${path}:${e.size ?? -1}`];
    });
  return walk("", answer.files).sort();
}

/** Moonraker's /server/files/directory, folder by folder: every file of the gcodes root. */
async function moonFiles(sim: MoonrakerSim): Promise<string[]> {
  interface Directory {
    result: { dirs: { dirname: string }[]; files: { filename: string; size: number }[] };
  }
  const walk = async (at: string): Promise<string[]> => {
    const query = new URLSearchParams({ path: `gcodes${at === "" ? "" : `/${at}`}` });
    const { result } = (await getJson(`${sim.url}/server/files/directory?${query.toString()}`)) as Directory;
    const prefix = at === "" ? "" : `${at}/`;
    const files = result.files.map((f) => `${prefix}${f.filename.normalize("NFC")}:${f.size}`);
    for (const d of result.dirs) files.push(...(await walk(`${prefix}${d.dirname}`)));
    return files;
  };
  return (await walk("")).sort();
}

/** Moonraker's /server/files/list: the G-code files only (its endings; Klipper prints no .bgcode). */
async function moonGcodeList(sim: MoonrakerSim): Promise<string[]> {
  const { result } = (await getJson(`${sim.url}/server/files/list?root=gcodes`)) as {
    result: { path: string; size: number }[];
  };
  return result.map((f) => `${f.path.normalize("NFC")}:${f.size}`).sort();
}

const SOURCE: Record<string, number> = {
  "benchy.gcode": 20_000,
  "calibration/first layer.gcode": 5_000,
  "calibration/deep/nested/tower.bgcode": 12_345,
  "Клиенты/Иванов/кронштейн для полки.gcode": 7_000,
  "Клиенты/Иванов/корпус датчика.bgcode": 9_000,
  "customers/ACME Corp/Spice_Harvester_0.3mm_PLA_MK4IS_12h45m_final_v2.bgcode": 30_000,
};
const listing = (source: Record<string, number>, only: (path: string) => boolean = () => true) =>
  Object.entries(source)
    .filter(([path]) => only(path))
    .map(([path, size]) => `${path}:${size}`)
    .sort();

void describe("ferry sync onto a farm of PrusaLink, OctoPrint and Moonraker printers", () => {
  let dir: string;
  let prusa: PrusaLinkSim;
  let octo: OctoPrintSim;
  let klip: MoonrakerSim;
  const source = { ...SOURCE };
  const lists = async () => ({
    "mk4-a": await prusaFiles(prusa),
    "octo-1": await octoFiles(octo),
    "klip-1": await moonFiles(klip),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-vendors-"));
    for (const [path, size] of Object.entries(source)) {
      await mkdir(join(dir, "master", path, ".."), { recursive: true });
      await writeFile(join(dir, "master", path), Buffer.alloc(size, path.length));
    }
    await writeFile(join(dir, "master", "notes.txt"), "not a print file");
    [prusa, octo, klip] = await Promise.all([
      PrusaLinkSim.start({ password: PRUSA_PASSWORD }),
      OctoPrintSim.start({ apiKey: OCTO_KEY, extensions: [...STOCK_EXTENSIONS, "bgcode"] }),
      MoonrakerSim.start(),
    ]);
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "devices:",
        `  mk4-a: { type: prusalink, url: "${prusa.url}", username: maker, password: "\${PRUSA_PASSWORD}" }`,
        `  octo-1: { type: octoprint, url: "${octo.url}", api_key: "\${OCTO_KEY}" }`,
        `  klip-1: { type: moonraker, url: "${klip.url}" }`,
        "groups:",
        "  farm: [mk4-a, octo-1, klip-1]",
        "syncs:",
        "  gcode:",
        "    source: ./master",
        "    targets: [farm]",
        "    mode: mirror",
        '    include: ["**/*.gcode", "**/*.bgcode"]',
        "    when: idle",
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await Promise.all([prusa.close(), octo.close(), klip.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  test("mirrors nested folders and Cyrillic names onto each vendor; a re-run plans nothing", async () => {
    const first = await syncJson(dir);
    assert.equal(first.code, 0, first.output);
    assert.doesNotMatch(first.output, new RegExp(`${PRUSA_PASSWORD}|${OCTO_KEY}`), "no secret is printed");
    assert.deepEqual(
      first.summary.targets.map((t) => [t.target, t.outcome, t.done, t.failed]),
      [
        ["mk4-a", "done", 6, 0],
        ["octo-1", "done", 6, 0],
        ["klip-1", "done", 6, 0],
      ],
    );
    const want = listing(source);
    assert.deepEqual(await lists(), { "mk4-a": want, "octo-1": want, "klip-1": want });
    // Moonraker's own G-code list names the files Klipper can print.
    assert.deepEqual(
      await moonGcodeList(klip),
      listing(source, (p) => p.endsWith(".gcode")),
    );

    const second = await syncJson(dir);
    assert.equal(second.code, 0, second.output);
    assert.deepEqual(
      second.summary.targets.map((t) => [t.target, t.planned]),
      [
        ["mk4-a", 0],
        ["octo-1", 0],
        ["klip-1", 0],
      ],
    );
  });

  test("a printing Klipper printer is skipped while the others follow; it catches up once its print is over", async () => {
    const before = listing(source);
    klip.startPrint("Клиенты/Иванов/кронштейн для полки.gcode");
    delete source["Клиенты/Иванов/кронштейн для полки.gcode"];
    await rm(join(dir, "master", "Клиенты/Иванов/кронштейн для полки.gcode"));
    source["Клиенты/новая деталь.gcode"] = 4_321;
    await writeFile(join(dir, "master", "Клиенты/новая деталь.gcode"), Buffer.alloc(4_321, 1));

    const gated = await syncJson(dir);
    assert.equal(gated.code, 0, `skipped-busy is not a failure: ${gated.output}`);
    assert.deepEqual(
      gated.summary.targets.map((t) => [t.target, t.outcome, t.state]),
      [
        ["mk4-a", "done", "IDLE"],
        ["octo-1", "done", "Operational"],
        ["klip-1", "skipped", "printing"],
      ],
    );
    const want = listing(source);
    assert.deepEqual(await lists(), { "mk4-a": want, "octo-1": want, "klip-1": before });

    // --include-busy syncs it anyway, and never deletes the file Klipper is printing.
    const forced = await syncJson(dir, "-p", "klip-1", "--include-busy");
    assert.equal(forced.code, 0, forced.output);
    assert.deepEqual(
      await moonFiles(klip),
      [...want, "Клиенты/Иванов/кронштейн для полки.gcode:7000"].sort(),
    );

    klip.setState("complete");
    const caughtUp = await syncJson(dir, "-p", "klip-1");
    assert.equal(caughtUp.code, 0, caughtUp.output);
    assert.deepEqual(
      caughtUp.summary.targets.map((t) => [t.target, t.outcome, t.done]),
      [["klip-1", "done", 1]],
    );
    assert.deepEqual(await moonFiles(klip), want);
  });
});
