/**
 * `ferry serve` end to end, with the example config: a watched folder mirrored to a local
 * folder and a PrusaLink printer, and a watched folder moved to an archive.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { waitFor } from "./support/wait.ts";

const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;
const PASSWORD = "serve-secret";

const exists = (path: string) =>
  readFile(path).then(
    (data) => data,
    () => undefined,
  );

describe("ferry serve", () => {
  let dir: string;
  let sim: PrusaLinkSim;
  let serve: ChildProcess;
  let output = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-serve-"));
    sim = await PrusaLinkSim.start({ port: 0, password: PASSWORD });
    for (const folder of ["inbox", "flights", "polled"]) await mkdir(join(dir, folder));
    await writeFile(join(dir, "inbox", "already.gcode"), "there before the start");
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "data_dir: ./ferry-data",
        "devices:",
        `  mk4-a: { type: prusalink, url: "${sim.url}", username: maker, password: "\${PRUSA_PASSWORD}" }`,
        "syncs:",
        "  backup:",
        "    source: ./inbox",
        "    targets: [./outbox, mk4-a]",
        "    mode: mirror",
        "    watch: true",
        "  logs:",
        "    source: ./flights",
        "    targets: [./archive]",
        "    mode: move",
        // Files the test wrote a moment ago, not a logger's: no settle time.
        "    settle: 0s",
        "    watch: true",
        "  reports:",
        "    source: ./polled",
        "    targets: [./polled-out]",
        "    mode: copy",
        "    poll: 1s",
        "",
      ].join("\n"),
    );
    serve = spawn(process.execPath, [cli, "serve"], {
      cwd: dir,
      env: { ...process.env, PRUSA_PASSWORD: PASSWORD, FERRY_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    serve.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    serve.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await waitFor("ferry serve to start", () => (output.includes("serving") ? true : undefined), {
      timeoutMs: 15_000,
    });
  });
  after(async () => {
    if (serve.exitCode === null) serve.kill("SIGKILL");
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("what was there at the start is delivered by the start scan", async () => {
    await waitFor("already.gcode in outbox", () => exists(join(dir, "outbox", "already.gcode")));
    await waitFor("already.gcode on the printer", () => sim.files().find((f) => f.path === "already.gcode"));
  });

  test("a new file reaches the local folder and the printer within a second", async () => {
    const t0 = performance.now();
    await writeFile(join(dir, "inbox", "new part.gcode"), Buffer.alloc(50_000, 7));
    await waitFor("new part.gcode in outbox", () => exists(join(dir, "outbox", "new part.gcode")), {
      timeoutMs: 1000,
    });
    await waitFor(
      "new part.gcode on the printer",
      () => sim.files().find((f) => f.path === "new part.gcode"),
      { timeoutMs: 1000 },
    );
    assert.ok(performance.now() - t0 < 1000);
    assert.equal((await readFile(join(dir, "outbox", "new part.gcode"))).length, 50_000);
  });

  test("a deleted file leaves both mirrors", async () => {
    await rm(join(dir, "inbox", "new part.gcode"));
    await waitFor("gone from outbox", async () =>
      (await exists(join(dir, "outbox", "new part.gcode"))) ? undefined : true,
    );
    await waitFor("gone from the printer", () =>
      sim.files().some((f) => f.path === "new part.gcode") ? undefined : true,
    );
  });

  test("move mode: a flight log lands in the archive, then leaves the source", async () => {
    await mkdir(join(dir, "flights", "2026-12-01"));
    await writeFile(join(dir, "flights", "2026-12-01", "log 1.bin"), Buffer.alloc(30_000, 3));
    await waitFor("log in the archive", () => exists(join(dir, "archive", "2026-12-01", "log 1.bin")));
    await waitFor("log gone from the source", async () =>
      (await readdir(join(dir, "flights", "2026-12-01"))).length === 0 ? true : undefined,
    );
    assert.equal((await readFile(join(dir, "archive", "2026-12-01", "log 1.bin"))).length, 30_000);
  });

  test("poll: an unwatched folder is planned again every second", async () => {
    await writeFile(join(dir, "polled", "report.csv"), "a,b\n");
    await waitFor("the report copied", () => exists(join(dir, "polled-out", "report.csv")), {
      timeoutMs: 4000,
    });
  });

  test("status shows the devices and the queue while it runs", async () => {
    const status = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [cli, "status", "--json"],
        { cwd: dir, env: { ...process.env, PRUSA_PASSWORD: PASSWORD } },
        (error, stdout) =>
          error ? reject(new Error(`ferry status failed: ${error.message}`)) : resolve(stdout),
      );
    });
    const parsed = JSON.parse(status) as {
      devices: { name: string; state: string }[];
      counts: { dead: number };
    };
    assert.equal(parsed.devices.find((d) => d.name === "mk4-a")?.state, "online");
    assert.equal(parsed.counts.dead, 0);
  });

  test("SIGTERM stops it within 10 s, cleanly", async () => {
    const t0 = performance.now();
    serve.kill("SIGTERM");
    const [code] = (await once(serve, "exit")) as [number | null];
    assert.equal(code, 0, output);
    assert.ok(performance.now() - t0 < 10_000);
  });
});
