/**
 * `ferry serve` with a removable volume as the source (move mode, staged): nothing happens while it
 * is away, everything is delivered and cleared from it once it is plugged in, and an unplug in
 * between leaves nothing half-done.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { StagedVolume, UUID } from "../src/storage/removable/test-support.ts";
import { waitFor } from "./support/wait.ts";

const cli = new URL("../src/cli/main.ts", import.meta.url).pathname;

function status(dir: string): Promise<{ devices: { name: string; state: string; detail?: string }[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, "status", "--json"], { cwd: dir }, (error, stdout) =>
      error
        ? reject(new Error(`ferry status failed: ${error.message}`))
        : resolve(JSON.parse(stdout) as never),
    );
  });
}

describe("ferry serve with a removable source", () => {
  let volume: StagedVolume;
  let dir: string;
  let serve: ChildProcess;
  let output = "";
  const archive = (name = "") => join(dir, "archive", name);

  before(async () => {
    volume = await StagedVolume.create();
    dir = join(volume.base, "ferry");
    await mkdir(dir);
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "data_dir: ./ferry-data",
        "devices:",
        `  drone: { type: removable, uuid: "${UUID}", by_uuid_dir: "${volume.byUuid}", by_label_dir: "${volume.byLabel}", mountinfo: "${volume.mountinfo}" }`,
        "syncs:",
        "  logs: { source: drone, targets: [./archive], mode: move, staging: true, settle: 0s }",
        "",
      ].join("\n"),
    );
    serve = spawn(process.execPath, [cli, "serve"], {
      cwd: dir,
      env: { ...process.env, FERRY_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    serve.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    serve.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await waitFor("ferry serve to start", () =>
      Promise.resolve(output.includes("serving") ? true : undefined),
    );
  });
  after(async () => {
    if (serve.exitCode === null) serve.kill("SIGKILL");
    await volume.cleanup();
  });

  test("while the volume is away, its device shows offline and nothing moves", async () => {
    const drone = (await status(dir)).devices.find((d) => d.name === "drone");
    assert.equal(drone?.state, "offline");
    assert.match(drone.detail ?? "", /not attached/);
  });

  test("plugged in, its logs are staged, delivered, verified and only then cleared from it", async () => {
    await mkdir(join(volume.mountPoint, "2026-12-01"), { recursive: true });
    await writeFile(join(volume.mountPoint, "2026-12-01", "flight 1.log"), Buffer.alloc(300_000, 1));
    await writeFile(join(volume.mountPoint, "photo.jpg"), Buffer.alloc(120_000, 2));
    await volume.attach();
    await waitFor("the logs in the archive", async () =>
      (await readFile(archive("photo.jpg")).catch(() => undefined)) &&
      (await readFile(archive("2026-12-01/flight 1.log")).catch(() => undefined))
        ? true
        : undefined,
    );
    await waitFor("the volume cleared", async () =>
      (await readdir(join(volume.mountPoint, "2026-12-01"))).length === 0 &&
      !(await readdir(volume.mountPoint)).includes("photo.jpg")
        ? true
        : undefined,
    );
    assert.equal((await readFile(archive("2026-12-01/flight 1.log"))).length, 300_000);
    assert.equal((await status(dir)).devices.find((d) => d.name === "drone")?.state, "online");
  });

  test("unplugged and plugged in again with a new log, it picks up where it is", async () => {
    await volume.detach();
    await waitFor("the device offline", async () =>
      (await status(dir)).devices.find((d) => d.name === "drone")?.state === "offline" ? true : undefined,
    );
    await writeFile(join(volume.mountPoint, "flight 2.log"), Buffer.alloc(200_000, 3));
    await volume.attach();
    await waitFor("the new log in the archive", async () =>
      (await readFile(archive("flight 2.log")).catch(() => undefined)) ? true : undefined,
    );
    await waitFor("the new log cleared from the volume", async () =>
      (await readdir(volume.mountPoint)).includes("flight 2.log") ? undefined : true,
    );
  });

  test("pulled out in the middle of staging a big log, it goes on from the staged bytes when back", async () => {
    const size = 96 * 1024 * 1024;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) data.writeUInt32LE(i, i);
    // The source is not watched: the log is found when the volume comes back, as in the field.
    await volume.detach();
    await waitFor("the device offline", async () =>
      (await status(dir)).devices.find((d) => d.name === "drone")?.state === "offline" ? true : undefined,
    );
    await writeFile(join(volume.mountPoint, "big flight.log"), data);
    await volume.attach();
    const part = join(dir, "ferry-data", "staging", "logs", "big flight.log.ferry-staging");
    // Once a few megabytes are staged (and synced: staging checkpoints every MiB), pull the stick.
    await waitFor(
      "staging to be under way",
      async () =>
        ((await stat(part).catch(() => undefined))?.size ?? 0) >= 8 * 1024 * 1024 ? true : undefined,
      // Short polls: the stick is pulled within milliseconds of the staged bytes' arrival.
      { timeoutMs: 30_000, intervalMs: 5 },
    );
    await volume.detach();
    const kept = await waitFor("staging to stop at the unplug", async () => {
      const first = (await stat(part).catch(() => undefined))?.size;
      await sleep(300);
      const second = (await stat(part).catch(() => undefined))?.size;
      return first !== undefined && first === second ? second : undefined;
    });
    assert.ok(kept > 0 && kept < size, `${kept} of ${size} bytes staged when the stick went`);
    await volume.attach();
    // Staging resumes at its last synced megabyte: the part file never shrinks far below `kept`.
    let least = kept;
    const watching = (async () => {
      for (;;) {
        const now = (await stat(part).catch(() => undefined))?.size;
        if (now === undefined) return;
        least = Math.min(least, now);
        await sleep(1);
      }
    })();
    await waitFor(
      "the big log in the archive",
      async () =>
        (await stat(archive("big flight.log")).catch(() => undefined))?.size === size ? true : undefined,
      { timeoutMs: 30_000 },
    );
    await watching;
    assert.ok(
      least >= kept - 2 * 1024 * 1024,
      `staging went back to ${least} bytes after ${kept} were staged`,
    );
    assert.ok((await readFile(archive("big flight.log"))).equals(data), "delivered byte for byte");
    await waitFor("the big log cleared from the volume", async () =>
      (await readdir(volume.mountPoint)).includes("big flight.log") ? undefined : true,
    );
  });

  test("stops cleanly", async () => {
    serve.kill("SIGTERM");
    const [code] = (await once(serve, "exit")) as [number | null];
    assert.equal(code, 0, output);
  });
});
