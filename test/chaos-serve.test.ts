/**
 * Crash safety: `ferry serve` moves and mirrors 500 files of mixed sizes (0 B to 20 MB, nested
 * folders, hostile names) local→local and local→PrusaLink, and is killed with SIGKILL at random
 * moments 20 times. After a last, clean run: every mirror target equals its source byte for byte,
 * every moved file reached every target before it left the source, no partial file shows under a
 * final name, no temp file is left in a local target, and no task is left running or lost.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { openStore } from "../src/store/store.ts";
import { StoreTaskQueue } from "../src/tasks/store-queue.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const FILES = 500;
const KILLS = 20;
const NAMES = ["plain", "with space", "Привет мир", "café", "a#b%c&d+e", ".hidden", "long_name_".repeat(8)];

/** Mostly small files, some medium, a few large: 0 B to 20 MB, about 100 MB in all. */
function sizeOf(i: number): number {
  if (i % 100 === 7) return 5_000_000 + ((i * 7919) % 15_000_000);
  if (i % 10 === 3) return 64_000 + ((i * 104_729) % 900_000);
  return i % 50 === 0 ? 0 : (i * 2_654_435) % 64_000;
}

/** "size:sha256" of a file's bytes. */
const fingerprint = (data: Buffer) => `${data.length}:${createHash("sha256").update(data).digest("hex")}`;
const sizesOf = (manifest: Map<string, string>) =>
  new Map([...manifest].map(([p, f]) => [p, Number(f.split(":")[0])]));

async function makeTree(root: string): Promise<Map<string, string>> {
  const manifest = new Map<string, string>();
  for (let i = 0; i < FILES; i++) {
    const dir = i % 5 === 0 ? "" : `d${i % 7}/${NAMES[i % NAMES.length]} ${i % 3}`;
    // .gcode: the printer takes no other file (random bytes pass, as on the real firmware).
    const path = (dir ? dir + "/" : "") + `${NAMES[(i * 3) % NAMES.length]}-${i}.gcode`;
    const data = randomBytes(sizeOf(i));
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), data);
    manifest.set(path.normalize("NFC"), fingerprint(data));
  }
  return manifest;
}

async function treeOf(root: string, prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let entries;
  try {
    entries = await readdir(join(root, prefix), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) for (const [p, h] of await treeOf(root, path)) out.set(p, h);
    else {
      // The tree may change while it is read (a running serve moves files away): skip what went.
      const data = await readFile(join(root, path)).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      });
      if (data) out.set(path.normalize("NFC"), fingerprint(data));
    }
  }
  return out;
}

/** Ferry's own temp files may be left by a kill, under their own hidden names, never under a final one. */
const isTemp = (path: string) => /(^|\/)\.ferry-[^/]*$/.test(path) || path.endsWith(".ferry-staging");
const withoutTemp = (tree: Map<string, string>) => new Map([...tree].filter(([p]) => !isTemp(p)));

function serve(dir: string): ChildProcess {
  return spawn(process.execPath, ["--max-semi-space-size=2", cli, "serve", "-c", join(dir, "ferry.yaml")], {
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, FERRY_LOG_LEVEL: "error" },
  });
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });

describe("chaos: kill -9 at random moments", { timeout: 15 * 60_000 }, () => {
  let dir: string;
  let sim: PrusaLinkSim;
  let mirrorManifest: Map<string, string>;
  let moveManifest: Map<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-chaos-"));
    mirrorManifest = await makeTree(join(dir, "src-mirror"));
    moveManifest = await makeTree(join(dir, "src-move"));
    sim = await PrusaLinkSim.start({ port: 0, password: "chaos", capacity: 4 * 1024 ** 3 });
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "data_dir: ./data",
        "devices:",
        `  mk4: { type: prusalink, url: "${sim.url}", username: maker, password: chaos }`,
        "syncs:",
        '  mirror: { source: ./src-mirror, targets: [./dst-mirror, "mk4:mirror"], mode: mirror, watch: true }',
        '  move: { source: ./src-move, targets: [./dst-move, "mk4:move"], mode: move, watch: true, settle: 0s }',
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await sim.close();
    if (process.env.FERRY_KEEP_CHAOS) console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  });

  // Its own deadline (8 min to converge) decides, not the suite's default per-test limit: on a
  // loaded 2-core machine the 20 lives alone can take minutes.
  test("converges after 20 kills, losing nothing", { timeout: 10 * 60_000 }, async () => {
    for (let kill = 0; kill < KILLS; kill++) {
      const child = serve(dir);
      await sleep(300 + Math.floor(Math.random() * 2500));
      child.kill("SIGKILL");
      await exited(child);
      // A moved file must never leave the source before both targets have it.
      const dstMove = withoutTemp(await treeOf(join(dir, "dst-move")));
      const srcMove = await treeOf(join(dir, "src-move"));
      const onPrinter = new Set(
        sim
          .files()
          .filter((f) => f.path.startsWith("move/"))
          .map((f) => f.path.slice(5).normalize("NFC")),
      );
      for (const [path, hash] of moveManifest) {
        if (srcMove.has(path)) continue;
        assert.equal(
          dstMove.get(path),
          hash,
          `kill ${kill}: ${path} left the source before reaching ./dst-move intact`,
        );
        assert.ok(onPrinter.has(path), `kill ${kill}: ${path} left the source before reaching the printer`);
      }
    }

    // A last run, to the end.
    const child = serve(dir);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 8 * 60_000;
    const printerFiles = (prefix: string) =>
      new Map(
        sim
          .files()
          .filter((f) => f.path.startsWith(prefix))
          .map((f) => [f.path.slice(prefix.length).normalize("NFC"), f.size]),
      );
    let converged = false;
    let progress = "";
    try {
      while (!converged && Date.now() < deadline) {
        await sleep(1000);
        const mirror = withoutTemp(await treeOf(join(dir, "dst-mirror")));
        const move = withoutTemp(await treeOf(join(dir, "dst-move")));
        const srcMove = await treeOf(join(dir, "src-move"));
        converged =
          mirror.size === mirrorManifest.size &&
          move.size === moveManifest.size &&
          srcMove.size === 0 &&
          printerFiles("mirror/").size === mirrorManifest.size &&
          printerFiles("move/").size === moveManifest.size;
        // What is still missing, for the failure message.
        progress =
          `./dst-mirror ${mirror.size}/${mirrorManifest.size}, ./dst-move ${move.size}/${moveManifest.size}, ` +
          `left in src-move ${srcMove.size}, printer mirror/ ${printerFiles("mirror/").size}, ` +
          `printer move/ ${printerFiles("move/").size}`;
      }
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    }
    child.kill("SIGTERM");
    const stoppedAt = Date.now();
    await exited(child);
    assert.ok(Date.now() - stoppedAt < 10_000, "serve stops within 10 s of SIGTERM");
    assert.ok(converged, `did not converge in time: ${progress}\n${stderr}`);

    // The last run's start scan swept the temp files the killed ones left.
    for (const folder of ["dst-mirror", "dst-move"]) {
      const temps = [...(await treeOf(join(dir, folder))).keys()].filter(isTemp);
      assert.deepEqual(temps, [], `no temp file left in ./${folder}`);
    }
    assert.deepEqual(
      withoutTemp(await treeOf(join(dir, "dst-mirror"))),
      mirrorManifest,
      "mirror target equals its source",
    );
    assert.deepEqual(await treeOf(join(dir, "src-mirror")), mirrorManifest, "mirror source untouched");
    assert.deepEqual(
      withoutTemp(await treeOf(join(dir, "dst-move"))),
      moveManifest,
      "every moved file reached ./dst-move intact",
    );
    assert.deepEqual(
      printerFiles("mirror/"),
      sizesOf(mirrorManifest),
      "the printer holds the mirror, size for size",
    );
    assert.deepEqual(
      printerFiles("move/"),
      sizesOf(moveManifest),
      "every moved file reached the printer, size for size",
    );

    const store = await openStore({ dataDir: join(dir, "data") });
    try {
      const queue = new StoreTaskQueue(store);
      const counts = await queue.counts();
      const dead = await queue.list({ status: "dead" });
      assert.equal(counts.running, 0, "no task left running");
      assert.equal(counts.queued, 0, "no task left queued");
      assert.deepEqual(
        dead.map((t) => `${t.key}: ${t.lastError ?? ""}`),
        [],
        "no task dead",
      );
    } finally {
      await store.close();
    }
  });
});
