/**
 * The field engineer's setup end to end: flight logs moved off a simulated PX4 flight controller
 * (MAVLink FTP over UDP, 5 % packet loss, a reboot in the middle of a transfer) to an FTP server
 * (vsftpd) and a local archive, staged once; each log arrives with the vehicle's CRC32 and leaves
 * the vehicle only once both targets hold it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { parseConfig } from "../src/config/load.ts";
import { silentLogger } from "../src/core/logger.ts";
import { Devices, deviceKinds } from "../src/devices/devices.ts";
import { runSync } from "../src/sync/run.ts";
import { MavlinkSim } from "../src/sim/mavlink/index.ts";
import { testOptions, Unavailable } from "./servers/common.ts";
import { startVsftpd, type Vsftpd } from "./servers/vsftpd.ts";

const LOGS = ["2024-05-01/12_00_00.ulg", "2024-05-01/12_30_00.ulg", "2024-05-02/09_15_00.ulg"];
const SIZES = [260_000, 90_000, 150_000];

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe(
  "flights: a drone's logs moved to FTP and an archive over a lossy link",
  { timeout: 5 * 60_000 },
  () => {
    let reason: string | undefined;
    let ftp: Vsftpd | undefined;
    let sim: MavlinkSim | undefined;
    let devices: Devices | undefined;
    let dir = "";
    let logs = "";
    const originals = new Map<string, Buffer>();

    before(async () => {
      try {
        ftp = await startVsftpd();
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        reason = error.message;
        return;
      }
      dir = await mkdtemp(join(tmpdir(), "ferry-flights-"));
      logs = join(dir, "vehicle-sd");
      for (const [i, path] of LOGS.entries()) {
        const data = randomBytes(SIZES[i] ?? 0);
        await mkdir(join(logs, path, ".."), { recursive: true });
        await writeFile(join(logs, path), data);
        // Flown this morning: long settled (a log still being written is left for later).
        const flown = new Date(Date.now() - 3 * 3600_000);
        await utimes(join(logs, path), flown, flown);
        originals.set(path, data);
      }
      // Not a flight log: the include pattern leaves it on the vehicle.
      await writeFile(join(logs, "2024-05-01", "notes.txt"), "pre-flight checklist");
      // The box's folder for logs, which its FTP user may write to.
      await mkdir(join(ftp.uploadRoot, "upload"), { recursive: true });
      await chmod(join(ftp.uploadRoot, "upload"), 0o777);
      // The second log's transfer starts at about 260 kB of file data: the vehicle reboots during it.
      sim = await MavlinkSim.start({
        logs,
        layout: "px4",
        faults: { loss: 0.05, rebootAfterBytes: 300_000, rebootDownMs: 1500 },
        seed: 11,
      });
      // The ferry.yaml, with this run's ports.
      const yaml = [
        "data_dir: ./ferry-data",
        "devices:",
        `  drone: { type: mavlink-ftp, url: "${sim.url}", root: /fs/microsd/log }`,
        `  box:   { type: ftp, host: 127.0.0.1, port: ${ftp.port}, username: ${ftp.login.username}, password: "\${FTP_PASSWORD}", root: /upload }`,
        "syncs:",
        '  flights: { source: drone, targets: [box, ./archive], mode: move, staging: true, include: ["**/*.ulg"] }',
        "",
      ].join("\n");
      const config = parseConfig(yaml, join(dir, "ferry.yaml"), {
        deviceKinds,
        env: { FTP_PASSWORD: ftp.login.password },
      });
      devices = new Devices(config, silentLogger);
    });

    after(async () => {
      await devices?.close();
      await sim?.close();
      await ftp?.close();
      if (dir !== "") await rm(dir, { recursive: true, force: true });
    });

    const flights = async () => {
      const sync = devices?.config.syncs.get("flights");
      assert.ok(sync && devices);
      return runSync(sync, devices, { attempts: 2 });
    };

    test("no log leaves the vehicle while the FTP box is down", testOptions(reason), async (t) => {
      if (reason !== undefined || !ftp) return t.skip(reason);
      await ftp.stop();
      try {
        const reports = await flights();
        assert.ok(
          reports.some((report) => report.outcome !== "done"),
          "the box's target did not finish",
        );
      } finally {
        await ftp.start();
      }
      for (const path of LOGS) assert.ok(await exists(join(logs, path)), `${path} is still on the vehicle`);
    });

    test(
      "every log arrives on both targets with its CRC32, then leaves the vehicle",
      testOptions(reason),
      async (t) => {
        if (reason !== undefined || !ftp || !sim) return t.skip(reason);
        const reports = await flights();
        for (const report of reports) {
          assert.equal(report.outcome, "done", `${report.target}: ${JSON.stringify(report.errors)}`);
        }
        assert.equal(sim.reboots, 1, "the vehicle rebooted during a transfer");
        assert.ok(
          sim.stats.framesDropped > 0 && sim.stats.requestsDropped > 0,
          "the link lost packets both ways",
        );
        for (const [path, data] of originals) {
          const archived: Buffer = await readFile(join(dir, "archive", path));
          const boxed: Buffer = await readFile(join(ftp.uploadRoot, "upload", path));
          assert.equal(crc32(archived), crc32(data), `${path} in the archive`);
          assert.equal(crc32(boxed), crc32(data), `${path} on the FTP box`);
          assert.equal(await exists(join(logs, path)), false, `${path} left the vehicle`);
        }
        assert.equal(await readFile(join(logs, "2024-05-01", "notes.txt"), "utf8"), "pre-flight checklist");
        // Staged once: each log crossed the radio link about once (plus the refilled gaps).
        const total = SIZES.reduce((a, b) => a + b, 0);
        assert.ok(
          sim.stats.fileBytesSent < total * 1.6,
          `the vehicle sent ${sim.stats.fileBytesSent} bytes for ${total}`,
        );
      },
    );
  },
);
