/**
 * The memory bound of a big transfer (issue 16): `ferry sync` of a 1 GiB file to each network
 * target peaks under 250 MB of RSS. A transfer holds a window of the file, never the file: a leak
 * of its chunks (an SFTP writer once kept every chunk of an upload reachable, 1.2 GB for 1 GiB)
 * shows here as a peak that grows with the file. The peak is the kernel's high-water mark of the
 * `ferry` process (test/support/max-rss.ts), so it does not depend on sampling or on the load.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { testOptions, Unavailable } from "./servers/common.ts";
import { networkTargets, type NetworkTargetName } from "./servers/targets.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const maxRss = new URL("./support/max-rss.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
const BOUND = 250 * 1e6;

let dir: string;
let hash: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-transfer-memory-"));
  await mkdir(join(dir, "big"));
  const out = createWriteStream(join(dir, "big", "big.bin"));
  const digest = createHash("sha256");
  // Random bytes, so no layer on the way can make the file smaller than it is.
  const block = randomBytes(4 * MiB);
  for (let at = 0; at < SIZE; at += block.length) {
    block.writeUInt32BE(at / block.length, 0);
    digest.update(block);
    if (!out.write(block)) await once(out, "drain");
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  hash = digest.digest("hex");
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `ferry sync` to its end; its peak RSS in bytes. */
async function syncPeak(name: string, device: Record<string, unknown>): Promise<number> {
  const run = join(dir, `run-${name}`);
  await mkdir(run, { recursive: true });
  await writeFile(
    join(run, "ferry.yaml"),
    [
      "data_dir: ./data",
      "devices:",
      `  net: ${JSON.stringify(device)}`,
      "syncs:",
      `  up: { source: ${JSON.stringify(join(dir, "big"))}, targets: ["net:memory"], mode: copy }`,
      "",
    ].join("\n"),
  );
  const rssFile = join(run, "max-rss");
  const child = spawn(
    process.execPath,
    // As bin/ferry.js runs it (its shebang's flag), with the high-water mark written at exit.
    ["--max-semi-space-size=2", "--import", maxRss, cli, "sync", "-c", join(run, "ferry.yaml")],
    {
      cwd: run,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, FERRY_LOG_LEVEL: "error", FERRY_MAX_RSS_FILE: rssFile },
    },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", resolve);
  });
  assert.equal(code, 0, `ferry sync exited ${code}: ${stderr}`);
  return Number(await readFile(rssFile, "utf8"));
}

for (const name of Object.keys(networkTargets) as NetworkTargetName[]) {
  describe(`ferry sync → ${name}: memory`, { timeout: 10 * 60_000 }, () => {
    test(`a 1 GiB upload peaks under ${BOUND / 1e6} MB of RSS`, async (t) => {
      let target;
      try {
        target = await networkTargets[name]();
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        if (testOptions(error.message).skip) return t.skip(error.message);
        throw error;
      }
      try {
        const peak = await syncPeak(name, target.device);
        assert.equal(await target.sha256("memory/big.bin"), hash, "the file arrived intact");
        assert.ok(peak < BOUND, `peak RSS ${(peak / 1e6).toFixed(0)} MB, bound ${BOUND / 1e6} MB`);
        t.diagnostic(`peak RSS ${(peak / 1e6).toFixed(0)} MB`);
      } finally {
        await target.close();
      }
    });
  });
}
