/**
 * What the conformance suite does not reach: the vehicle's CRC32 convention, reads through packet
 * loss and reordering, a reboot mid-transfer, another ground station holding the session (BUSY),
 * NAKs as Ferry's codes, older firmware without ListDirectoryWithTime, heartbeats as the device's
 * state in the connection checker, a serial link over a pseudo-terminal pair, and the simulator's
 * control API.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { crc32 } from "node:zlib";
import { findBinary, freePort, testOptions } from "../../../test/servers/common.ts";
import { collect } from "../../../test/conformance/storage-helpers.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { isFerryError } from "../../core/errors.ts";
import { hex32, standardCrc32, vehicleCrc32 } from "../../core/mavlink-ftp.ts";
import { ConnectionChecker } from "../../devices/checker.ts";
import type { StorageAdapter } from "../adapter.ts";
import { startRig } from "./test-support.ts";

/** The table-driven CRC that PX4 (NuttX crc32part) and ArduPilot (crc_crc32) run, for reference. */
function firmwareCrc32(data: Uint8Array): number {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = 0;
  for (const byte of data) crc = ((table[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8)) >>> 0;
  return crc;
}

/** A UDP port of 127.0.0.1 nobody holds now. */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

async function readAll(adapter: StorageAdapter, path: string, offset = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await adapter.read(path, offset > 0 ? { offset } : {}))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function putLog(logs: string, path: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await mkdir(join(logs, path, ".."), { recursive: true });
  await writeFile(join(logs, path), data);
  return data;
}

describe("mavlink-ftp", { timeout: 120_000 }, () => {
  it("computes the vehicle's CRC32 and converts it to zlib's", () => {
    for (const size of [0, 1, 239, 100_000]) {
      const data = randomBytes(size);
      assert.equal(vehicleCrc32(data), firmwareCrc32(data), `vehicle CRC of ${size} bytes`);
      assert.equal(standardCrc32(vehicleCrc32(data), size), crc32(data), `zlib CRC of ${size} bytes`);
    }
  });

  it("reads a log through 5 % loss and reordering, byte-exact and verified", async () => {
    const rig = await startRig({ faults: { loss: 0.05, reorder: 0.02 }, seed: 7 });
    try {
      const data = await putLog(rig.logs, "2024-05-01/12_00_00.ulg", 400_000);
      const drone = rig.open({ root: "@MAV_LOG" });
      const got = await readAll(drone, "2024-05-01/12_00_00.ulg");
      assert.ok(got.equals(data), "the bytes arrive intact");
      const stats = drone.lastRead;
      assert.ok(stats && stats.refills > 0, "lost burst packets were read again with ReadFile");
      assert.ok(rig.sim.stats.framesDropped > 0, "the link lost packets");
      // Nothing is read twice beyond the gaps: each refill, and each retry of one, is one message
      // of at most 239 bytes (plus a few packets of a burst that overlapped the next).
      const extra = (stats.refills + drone.client.retries + 20) * 239;
      assert.ok(
        rig.sim.stats.fileBytesSent <= data.length + extra,
        `no second pass: ${rig.sim.stats.fileBytesSent} bytes sent for ${data.length}, ${stats.refills} refills, ${drone.client.retries} retries, ${stats.bursts} bursts`,
      );
      assert.equal(await drone.hash("2024-05-01/12_00_00.ulg", "crc32"), hex32(crc32(data)));
      assert.deepEqual(await readAll(drone, "2024-05-01/12_00_00.ulg", 123_457), data.subarray(123_457));
    } finally {
      await rig.close();
    }
  });

  it("goes on from what it holds when the vehicle reboots mid-transfer", async () => {
    const rig = await startRig({
      faults: { rebootAfterBytes: 150_000, rebootDownMs: 800, loss: 0.02 },
      seed: 3,
    });
    try {
      const data = await putLog(rig.logs, "00000001.BIN", 400_000);
      const drone = rig.open({ min_timeout_ms: 20, max_timeout_ms: 200, retries: 3 });
      const got = await readAll(drone, "00000001.BIN");
      assert.ok(got.equals(data), "the bytes arrive intact");
      assert.equal(rig.sim.reboots, 1);
      assert.ok((drone.lastRead?.recoveries ?? 0) >= 1, "the read reconnected");
      // What arrived before the reboot was not asked for again.
      assert.ok(rig.sim.stats.fileBytesSent < data.length * 1.25, `sent ${rig.sim.stats.fileBytesSent}`);
    } finally {
      await rig.close();
    }
  });

  it("is BUSY while another ground station holds the session, and lists meanwhile", async () => {
    const rig = await startRig();
    try {
      const data = await putLog(rig.logs, "a.ulg", 1000);
      const drone = rig.open();
      rig.sim.holdSession();
      await assert.rejects(drone.read("a.ulg"), (error: unknown) => {
        assert.ok(isFerryError(error, "BUSY"), String(error));
        assert.equal(error.retryable, true);
        assert.match(error.message, /another ground station/);
        return true;
      });
      assert.deepEqual(
        (await collect(drone.list(""))).map((e: { path: string }) => e.path),
        ["a.ulg"],
      );
      rig.sim.releaseSession();
      assert.ok((await readAll(drone, "a.ulg")).equals(data));
    } finally {
      await rig.close();
    }
  });

  it("maps NAKs to Ferry's codes naming the path", async () => {
    const rig = await startRig();
    try {
      await putLog(rig.logs, "dir/a.ulg", 10);
      const drone = rig.open();
      await assert.rejects(
        drone.read("nope.ulg"),
        (error: unknown) => isFerryError(error, "NOT_FOUND") && /nope\.ulg/.test(error.message),
      );
      await assert.rejects(collect(drone.list("nope")), (error: unknown) => isFerryError(error, "NOT_FOUND"));
      await assert.rejects(drone.remove("dir"), (error: unknown) => isFerryError(error, "NOT_EMPTY"));
      await assert.rejects(drone.stat("a\tb.ulg"), (error: unknown) => isFerryError(error, "NAME_INVALID"));
    } finally {
      await rig.close();
    }
  });

  it("lists without times on firmware that lacks ListDirectoryWithTime", async () => {
    const rig = await startRig({ listWithTime: false, layout: "ardupilot" });
    try {
      await putLog(rig.logs, "00000002.BIN", 500);
      const drone = rig.open();
      assert.deepEqual(await collect(drone.list("")), [{ path: "00000002.BIN", type: "file", size: 500 }]);
    } finally {
      await rig.close();
    }
  });

  it("is online while heartbeats come and offline when they stop (connection checker)", async () => {
    const rig = await startRig({ heartbeatMs: 200 });
    try {
      const drone = rig.open({ heartbeat_timeout_s: 1.5 });
      const changes: string[] = [];
      const checker = new ConnectionChecker({ set: () => Promise.resolve() }, (_name, state) =>
        changes.push(state),
      );
      checker.track({ name: "drone", storage: drone });
      assert.equal(await checker.probe("drone"), "online");
      rig.sim.reboot(5000);
      await waitFor("offline", async () => (await checker.probe("drone")) === "offline", {
        timeoutMs: 10_000,
      });
      await waitFor("online again", async () => (await checker.probe("drone")) === "online", {
        timeoutMs: 10_000,
      });
      assert.equal(changes[0], "online");
      assert.ok(changes.includes("offline"), "offline while it was silent");
      assert.equal(changes.at(-1), "online");
    } finally {
      await rig.close();
    }
  });

  for (const kind of ["tcp", "udpin"] as const) {
    it(`works over ${kind}://`, async () => {
      const port = kind === "tcp" ? await freePort() : await freeUdpPort();
      const rig = await startRig(
        kind === "tcp"
          ? { tcp: { host: "127.0.0.1", port } }
          : { sendTo: { host: "127.0.0.1", port }, faults: { loss: 0.02 } },
      );
      try {
        assert.equal(rig.sim.url, `${kind}://127.0.0.1:${port}`);
        const data = await putLog(rig.logs, "2024-05-01/14_00_00.ulg", 50_000);
        const drone = rig.open();
        assert.ok((await readAll(drone, "2024-05-01/14_00_00.ulg")).equals(data));
      } finally {
        await rig.close();
      }
    });
  }

  const socat = findBinary("socat");
  it(
    "works over a serial link (a socat pseudo-terminal pair)",
    testOptions(socat ? undefined : "socat is not installed"),
    async () => {
      const rig = await startRig({ pty: true, faults: { baud: 921_600 } });
      try {
        assert.match(rig.sim.url, /^serial:\/\/\/.+\?baud=921600$/);
        const data = await putLog(rig.logs, "2024-05-01/13_00_00.ulg", 60_000);
        const drone = rig.open();
        assert.ok((await readAll(drone, "2024-05-01/13_00_00.ulg")).equals(data));
        await drone.remove("2024-05-01/13_00_00.ulg");
        await assert.rejects(readFile(join(rig.logs, "2024-05-01/13_00_00.ulg")), { code: "ENOENT" });
      } finally {
        await rig.close();
      }
    },
  );

  it("takes faults from its control API", async () => {
    const rig = await startRig({ controlPort: 0 });
    try {
      const url = rig.sim.controlUrl ?? "";
      const put = await fetch(`${url}faults`, {
        method: "PUT",
        body: JSON.stringify({ loss: 0.1, baud: 57_600 }),
      });
      assert.equal(put.status, 204);
      assert.equal((await fetch(`${url}hold`, { method: "POST" })).status, 204);
      const state = (await (await fetch(`${url}state`)).json()) as {
        faults: { loss: number; baud: number };
        session_owner: string;
      };
      assert.equal(state.faults.loss, 0.1);
      assert.equal(state.faults.baud, 57_600);
      assert.equal(state.session_owner, "254:190");
      const bad = await fetch(`${url}faults`, { method: "PUT", body: JSON.stringify({ loss: 2 }) });
      assert.equal(bad.status, 400);
    } finally {
      await rig.close();
    }
  });
});
