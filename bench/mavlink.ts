/**
 * Benchmark (not a test): a flight log read off the simulated flight controller over UDP on
 * 127.0.0.1, with the vehicle's link limited to a serial rate, at 0 % and 5 % packet loss.
 *
 *   npm run bench:mavlink -- [--size 20MB] [--baud 921600] [--loss 0,0.05]
 *
 * The physical bound is the link rate (10 bits a byte on a UART) times the share of a full
 * FILE_TRANSFER_PROTOCOL frame that is file data: 239 of 266 bytes (MAVLink 2 header and CRC, the
 * message's target fields, the FTP header). Targets: >= 85 % of the bound at 0 % loss, >= 70 %
 * at 5 %. Each read is checked byte for byte (and by the vehicle's CRC32 inside the read).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { silentLogger } from "../src/core/logger.ts";
import { DATA_BYTES, PAYLOAD_BYTES } from "../src/core/mavlink-ftp.ts";
import { parseSize } from "../src/core/units.ts";
import { MavlinkSim } from "../src/sim/mavlink/index.ts";
import { MavlinkFtpStorage, mavlinkFtpOptionsSchema } from "../src/storage/mavlink-ftp/mavlink-ftp.ts";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "20MB" },
    baud: { type: "string", default: "921600" },
    loss: { type: "string", default: "0,0.05" },
  },
});
const size = parseSize(values.size, "--size");
const baud = Number(values.baud);
const losses = values.loss.split(",").map(Number);
/** MAVLink 2: 10 header bytes and a 2-byte CRC around target_network, _system, _component and the payload. */
const FRAME_BYTES = 10 + 3 + PAYLOAD_BYTES + 2;
const bound = (baud / 10) * (DATA_BYTES / FRAME_BYTES);
const targets: Record<string, number> = { "0": 0.85, "0.05": 0.7 };

const logs = await mkdtemp(join(tmpdir(), "ferry-bench-mavlink-"));
const path = "2024-05-01/12_00_00.ulg";
const data = randomBytes(size);
await mkdir(join(logs, "2024-05-01"));
await writeFile(join(logs, path), data);

console.log(
  `bench:mavlink: ${(size / 1e6).toFixed(1)} MB over UDP, link ${baud} baud; bound ${(bound / 1000).toFixed(1)} kB/s (${DATA_BYTES}/${FRAME_BYTES} of ${baud / 10} B/s)`,
);
let failed = false;
try {
  for (const loss of losses) {
    const sim = await MavlinkSim.start({ logs, faults: { baud, loss }, seed: 42 });
    const drone = new MavlinkFtpStorage(mavlinkFtpOptionsSchema.parse({ url: sim.url, root: sim.mount }), {
      name: "drone",
      logger: silentLogger,
      baseDir: "/",
    });
    try {
      for await (const _ of drone.list("")) break; // connect first: the read alone is timed
      const started = performance.now();
      const chunks: Buffer[] = [];
      for await (const chunk of await drone.read(path)) chunks.push(chunk as Buffer);
      const seconds = (performance.now() - started) / 1000;
      const got = Buffer.concat(chunks);
      if (!got.equals(data)) throw new Error("the bytes read differ from the log");
      const rate = size / seconds;
      const share = rate / bound;
      const target = targets[String(loss)];
      const ok = target === undefined || share >= target;
      if (!ok) failed = true;
      const stats = drone.lastRead;
      console.log(
        `loss ${(loss * 100).toFixed(0).padStart(2)} %: ${seconds.toFixed(1)} s, ${(rate / 1000).toFixed(1)} kB/s = ${(share * 100).toFixed(1)} % of the bound` +
          (target === undefined ? "" : ` (target >= ${target * 100} %: ${ok ? "met" : "MISSED"})`) +
          `; bursts ${stats?.bursts ?? 0}, ReadFile refills ${stats?.refills ?? 0}, retries ${drone.client.retries}, vehicle sent ${sim.stats.fileBytesSent} file bytes`,
      );
    } finally {
      await drone.close();
      await sim.close();
    }
  }
} finally {
  await rm(logs, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
