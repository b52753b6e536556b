/**
 * Two farm nodes over one store (DESIGN.md §6), on SQLite (one file shared by two processes) and on
 * PostgreSQL: node A runs in a process of its own, node B in this one. Each printer is driven by
 * exactly one node; A is killed (-9) mid-print, and B takes its printers over once their leases
 * expire, follows the prints to their end and runs new ones, with nothing started twice. Then
 * max_heating holds across nodes: a printer another node drives and reports heating counts.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createApp, type App } from "../src/app.ts";
import { parseConfig, type FerryConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import type { Job } from "../src/farm/jobs.ts";
import { OctoPrintSim } from "../src/sim/octoprint/index.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { localAdapter } from "../src/storage/local/local.ts";
import { testPostgres } from "./servers/postgres.ts";
import { folderJobFiles } from "./support/farm-files.ts";
import { waitFor } from "./support/wait.ts";
import { estimatedGcode } from "./support/gcode.ts";

const PASSWORD = "farm-nodes";
const KEY = "farm-nodes-key";
/** Printer time runs this many times faster: the ten-hour prints take a minute until sped up. */
const SPEED = 600;
/** A dead node's printers wait this long for another node. */
const LEASE_MS = 1_500;
const NODE_SCRIPT = new URL("./support/farm-node.ts", import.meta.url).pathname;

const pg = await testPostgres();

describe("two farm nodes over one store", { timeout: 300_000 }, () => {
  let prusa: PrusaLinkSim[];
  let octo: OctoPrintSim[];
  const printers = ["mk4-1", "mk4-2", "octo-1", "octo-2"];

  after(() => pg.close());

  const setSpeed = (speed: number) => [...prusa, ...octo].forEach((sim) => sim.setSpeed(speed));
  /** The id of each printer's current or last print (0: none), as the printers number them. */
  const printIds = () => [...prusa, ...octo].map((sim) => sim.printer.job?.id ?? 0);

  function yaml(maxHeating: number): string {
    const [p1, p2] = prusa;
    const [o1, o2] = octo;
    assert.ok(p1 && p2 && o1 && o2);
    return `data_dir: ./data
devices:
  mk4-1: { type: prusalink, url: "${p1.url}", password: "${PASSWORD}", farm: true, auto_clear: true }
  mk4-2: { type: prusalink, url: "${p2.url}", password: "${PASSWORD}", farm: true, auto_clear: true }
  octo-1: { type: octoprint, url: "${o1.url}", api_key: "${KEY}", farm: true, auto_clear: true }
  octo-2: { type: octoprint, url: "${o2.url}", api_key: "${KEY}", farm: true, auto_clear: true }
farm:
  max_heating: ${maxHeating}
  interval: 100ms
`;
  }

  async function scenario(databaseUrl: string | undefined): Promise<void> {
    // Printers of their own: a print left on one from another scenario would be adopted here.
    prusa = await Promise.all([1, 2].map(() => PrusaLinkSim.start({ password: PASSWORD, speed: SPEED })));
    octo = await Promise.all([1, 2].map(() => OctoPrintSim.start({ apiKey: KEY, speed: SPEED })));
    const dir = await mkdtemp(join(tmpdir(), "ferry-farm-nodes-"));
    const library = join(dir, "library");
    await mkdir(library);
    const configPath = join(dir, "ferry.yaml");
    await writeFile(configPath, yaml(10));
    for (let i = 1; i <= 8; i++)
      await writeFile(join(library, `vase-${i}.gcode`), estimatedGcode(600, `vase ${i}`));
    const parse = (text: string): FerryConfig => parseConfig(text, configPath, { deviceKinds, env: {} });
    const files = folderJobFiles(
      localAdapter.create({ path: library }, { name: "library", logger: silentLogger, baseDir: dir }),
    );
    const nodeB = (config: FerryConfig) =>
      createApp(config, {
        logger: silentLogger,
        node: "node-b",
        jobFiles: files,
        farmLeaseMs: LEASE_MS,
        ...(databaseUrl ? { databaseUrl } : {}),
      });
    let a: ChildProcess | undefined;
    let b: App | undefined = await nodeB(parse(yaml(10)));
    try {
      const farm = () => {
        assert.ok(b);
        return b.farm;
      };
      for (const name of printers) await farm().markBedClear(name, "olga");
      // Node A first, so that it drives every printer; then B, which must leave them alone.
      a = spawn(
        process.execPath,
        [NODE_SCRIPT, configPath, "node-a", library, String(LEASE_MS), ...(databaseUrl ? [databaseUrl] : [])],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const child = a;
      let out = "";
      child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
      await waitFor("node A to start", () => {
        if (child.exitCode !== null) throw new Error(`node A exited with ${child.exitCode}`);
        return out.includes("ready");
      });
      const drivenBy = async () => (await farm().printers()).map((p) => p.drivenBy);
      await waitFor("node A to drive every printer", async () =>
        (await drivenBy()).every((holder) => holder === "node-a"),
      );
      await b.start();

      const jobs: Job[] = [];
      for (let i = 1; i <= 4; i++)
        jobs.push(
          ...(await farm().submit({
            file: { id: `vase-${i}.gcode`, name: `vase-${i}.gcode`, sha256: null },
            owner: "olga",
            role: "operator",
          })),
        );
      const states = async () => Promise.all(jobs.map(async (j) => (await farm().get(j.id)).state));
      await waitFor(
        "node A to print the four jobs",
        async () => (await states()).every((s) => s === "printing"),
        {
          detail: async () =>
            `jobs ${(await states()).join(", ")}; printers ${JSON.stringify(
              (await farm().printers()).map((p) => [p.name, p.drivenBy, p.bedClear, p.job?.state]),
            )}; why ${jobs.map((j) => farm().why(j.id) ?? "-").join(" | ")}`,
        },
      );
      // B saw none of the printers itself: A drives them all.
      const views = await farm().printers();
      assert.deepEqual(
        views.map((v) => [v.name, v.drivenBy, v.connection]),
        printers.map((name) => [name, "node-a", null]),
      );
      assert.deepEqual(printIds(), [1, 1, 1, 1], "one print started on each printer");

      // kill -9: A's leases stay in the store until they expire.
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
      const killedAt = Date.now();
      await waitFor("node B to take every printer over", async () =>
        (await drivenBy()).every((holder) => holder === "node-b"),
      );
      assert.ok(Date.now() - killedAt >= LEASE_MS / 2, "not before A's leases ran out");
      assert.deepEqual(await states(), ["printing", "printing", "printing", "printing"]);

      setSpeed(SPEED * 1000);
      await waitFor("the four prints to finish and complete under node B", async () =>
        (await states()).every((s) => s === "completed"),
      );
      setSpeed(SPEED);
      for (const job of jobs) {
        const history = await farm().history(job.id);
        assert.deepEqual(
          history.map((h) => `${h.from ?? "-"}→${h.to}`),
          [
            "-→queued",
            "queued→scheduled",
            "scheduled→uploading",
            "uploading→printing",
            "printing→printed",
            "printed→completed",
          ],
        );
        assert.equal(history[2]?.actor, "ferry@node-a", "A sent it");
        assert.equal(history[5]?.actor, "ferry@node-b", "B saw it done");
      }
      assert.deepEqual(printIds(), [1, 1, 1, 1], "nothing was started twice");

      // B alone runs new jobs on them.
      const more: Job[] = [];
      for (let i = 5; i <= 8; i++)
        more.push(
          ...(await farm().submit({
            file: { id: `vase-${i}.gcode`, name: `vase-${i}.gcode`, sha256: null },
            owner: "olga",
            role: "operator",
          })),
        );
      setSpeed(SPEED * 1000);
      await waitFor("node B to run four more jobs", async () =>
        (await Promise.all(more.map(async (j) => (await farm().get(j.id)).state))).every(
          (s) => s === "completed",
        ),
      );
      setSpeed(SPEED);
      assert.deepEqual(printIds(), [2, 2, 2, 2]);

      // max_heating across nodes: a node C drives octo-2 and reports it heating; with max_heating 1
      // node B starts nothing until C says it is warm.
      await b.stop();
      b = undefined;
      b = await nodeB(parse(yaml(1)));
      assert.ok(await farm().printerStates.acquire("octo-2", "node-c", 600_000));
      assert.ok(await farm().printerStates.setHeating("octo-2", "node-c", true));
      await b.start();
      await waitFor("node B to drive the other three printers", async () =>
        (await drivenBy()).every((holder, i) => holder === (printers[i] === "octo-2" ? "node-c" : "node-b")),
      );
      const [next] = await farm().submit({
        file: { id: "vase-1.gcode", name: "vase-1.gcode", sha256: null },
        owner: "olga",
        role: "operator",
      });
      assert.ok(next);
      await waitFor("the job to wait for node C's heating printer", () =>
        farm().why(next.id)?.includes("1 printer is heating (max_heating 1)"),
      );
      assert.equal((await farm().get(next.id)).state, "queued");
      assert.ok(await farm().printerStates.setHeating("octo-2", "node-c", false));
      await waitFor("the job to start once C's printer is warm", async () =>
        ["uploading", "printing", "printed", "completed"].includes((await farm().get(next.id)).state),
      );
      await farm().printerStates.release("octo-2", "node-c");
    } finally {
      if (a && a.exitCode === null && a.signalCode === null) a.kill("SIGKILL");
      await b?.stop();
      await Promise.all([...prusa, ...octo].map((sim) => sim.close()));
      await rm(dir, { recursive: true, force: true });
    }
  }

  test("on SQLite (one file, two processes)", () => scenario(undefined));

  test("on PostgreSQL", pg.testOptions, async () => scenario(await pg.database()));
});
