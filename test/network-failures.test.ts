/**
 * `ferry serve` against real servers when things go wrong (issue: network storage, failure
 * behaviour): the server goes down in the middle of a big upload (the task waits, the device shows
 * offline, and when the server is back the upload goes on without sending again what the server
 * holds), and Ferry is killed with SIGKILL in the middle of a 256 MiB upload (on restart at most
 * one chunk is sent again and the file arrives intact). What the server holds is read on the
 * server's side, never through Ferry.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { testOptions, Unavailable } from "./servers/common.ts";
import { waitFor } from "./support/wait.ts";
import { networkTargets, type NetworkTarget, type NetworkTargetName } from "./servers/targets.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const MiB = 1024 * 1024;
const SIZE = 256 * MiB;

/**
 * How much a resumed upload may send again, per target: what was in flight when it broke and is
 * not on the server yet. FTP appends from the server's size; SFTP resumes from the server's size of
 * its temp file; WebDAV sends ranged PUTs of a chunk each; S3 keeps whole parts only.
 */
const ONE_CHUNK: Record<NetworkTargetName, number> = {
  ftp: 4 * MiB,
  sftp: 4 * MiB,
  webdav: 16 * MiB,
  // A part is the unit: the parts in flight when it broke (4 of 8 MiB) go again.
  s3: 4 * 8 * MiB,
};

/** An event's type beside its payload's fields. */
interface Event {
  event: string;
  [key: string]: unknown;
}

/** `ferry serve --json`, its events collected as they come. */
function serve(dir: string): {
  child: ChildProcess;
  events: Event[];
  until(match: (e: Event) => boolean, ms?: number): Promise<Event>;
} {
  const child = spawn(process.execPath, [cli, "serve", "--json", "-c", join(dir, "ferry.yaml")], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, FERRY_LOG_LEVEL: "error" },
  });
  const events: Event[] = [];
  let buffer = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith("{")) continue;
      const { type, payload } = JSON.parse(line) as { type: string; payload: Record<string, unknown> };
      events.push({ ...payload, event: type });
    }
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const until = (match: (e: Event) => boolean, ms = 120_000) =>
    waitFor(
      "an event of ferry serve",
      () => {
        if (child.exitCode !== null) throw new Error(`ferry serve exited ${child.exitCode}: ${stderr}`);
        return events.find(match);
      },
      {
        timeoutMs: ms,
        detail: () =>
          `last events:\n${events
            .slice(-8)
            .map((e) => JSON.stringify(e))
            .join("\n")}\n${stderr}`,
      },
    );
  return { child, events, until };
}

async function stopped(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exit;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** Waits until `read` gives at least `min`, returning what it read. */
async function reaches(read: () => Promise<number>, min: number, what: string, ms = 60_000): Promise<number> {
  let last = 0;
  return waitFor(
    what,
    async () => {
      last = await read();
      return last >= min && last;
    },
    { timeoutMs: ms, intervalMs: 10, detail: () => `reached only ${last} of ${min}` },
  );
}

/** Whether a process of this machine has a file under `dir` open (a server still writing to it). */
async function openUnder(dir: string): Promise<boolean> {
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (target.startsWith(`${dir}/`)) return true;
    }
  }
  return false;
}

const isUpload = (e: Event, kind: string) => e.event === kind && String(e.what).startsWith("send");

for (const name of Object.keys(ONE_CHUNK) as NetworkTargetName[]) {
  describe(`ferry serve → ${name}: failures`, { timeout: 10 * 60_000 }, () => {
    let target: NetworkTarget | undefined;
    let reason: string | undefined;
    let dir: string;
    let bigHash: string;

    before(async () => {
      try {
        target = await networkTargets[name]();
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        reason = error.message;
        return;
      }
      dir = await mkdtemp(join(tmpdir(), `ferry-net-${name}-`));
      await mkdir(join(dir, "big"));
      const chunks = function* () {
        for (let at = 0; at < SIZE; at += 4 * MiB) yield randomBytes(4 * MiB);
      };
      await pipeline(Readable.from(chunks()), createWriteStream(join(dir, "big", "big.bin")));
      bigHash = await sha256(join(dir, "big", "big.bin"));
    });
    after(async () => {
      await target?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** A config sending ./big to `folder` of the target. */
    const configure = (folder: string) =>
      writeFile(
        join(dir, "ferry.yaml"),
        [
          "data_dir: ./data",
          "devices:",
          `  net: ${JSON.stringify(target?.device)}`,
          "syncs:",
          `  up: { source: ./big, targets: ["net:${folder}"], mode: copy }`,
          "",
        ].join("\n"),
      );

    const checkArrived = async (folder: string) => {
      assert.ok(target);
      assert.equal(await target.partialBytes(folder), 0, "no partial upload left");
      assert.equal(await target.sha256(`${folder}/big.bin`), bigHash, "the file arrived intact");
    };

    test("the server stops mid-upload: the task waits, and goes on from what the server holds", async (t) => {
      if (reason !== undefined && testOptions(reason).skip) return t.skip(reason);
      assert.ok(target, reason);
      const server = target;
      await configure("outage");
      const run = serve(dir);
      try {
        const seen = await reaches(
          () => server.partialBytes("outage"),
          SIZE / 4,
          "a quarter of the upload on the server",
        );
        await server.stop();
        // A stopped S3 cannot be asked: what it held just before is a lower bound.
        const held = server.dataDir ? await server.partialBytes("outage") : seen;
        await run.until((e) => e.event === "device.state" && e.device === "net" && e.state === "offline");
        await run.until((e) => isUpload(e, "task.failed") && e.outcome === "parked");
        const failuresWhileDown = run.events.filter((e) => e.event === "task.failed").length;
        await sleep(3000);
        assert.ok(
          run.events.filter((e) => e.event === "task.failed").length <= failuresWhileDown + 1,
          "no retry storm while the server is down",
        );
        await server.start();
        await run.until((e) => e.event === "device.state" && e.device === "net" && e.state === "online");
        const done = await run.until((e) => isUpload(e, "task.done"));
        const sent = Number(done.bytes);
        assert.ok(
          sent <= SIZE - held + ONE_CHUNK[name],
          `sent ${sent} again; the server held ${held} of ${SIZE}`,
        );
        await checkArrived("outage");
      } finally {
        await stopped(run.child, "SIGKILL");
      }
    });

    test("kill -9 mid-upload of 256 MiB: on restart at most one chunk goes again", async (t) => {
      if (reason !== undefined && testOptions(reason).skip) return t.skip(reason);
      assert.ok(target, reason);
      const server = target;
      await configure("killed");
      const first = serve(dir);
      try {
        await reaches(() => server.partialBytes("killed"), SIZE / 3, "a third of the upload on the server");
      } finally {
        await stopped(first.child, "SIGKILL");
      }
      // The server notices the dropped connection and closes its file: only then is what it holds final.
      const dataDir = server.dataDir;
      if (dataDir !== undefined) {
        await waitFor(
          "the server to close the partial file",
          async () => !(await openUnder(join(dataDir, "killed"))),
        );
      }
      const held = await server.partialBytes("killed");
      assert.ok(held > 0 && held < SIZE, `the server holds a part of the upload (${held})`);
      const second = serve(dir);
      try {
        const done = await second.until((e) => isUpload(e, "task.done"));
        const sent = Number(done.bytes);
        assert.ok(
          sent <= SIZE - held + ONE_CHUNK[name],
          `sent ${sent} again; the server held ${held} of ${SIZE}`,
        );
        assert.ok(sent < SIZE, "it resumed, it did not start over");
        await checkArrived("killed");
      } finally {
        await stopped(second.child, "SIGTERM");
      }
    });
  });
}
