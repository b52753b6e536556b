/**
 * The simulated flight controller answers as the spec says (repeats, bursts, listing offsets,
 * sessions), and `ferry sim mavlink` serves a folder that the adapter can read.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../../../test/support/wait.ts";
import {
  decodePayload,
  encodePayload,
  FTP_ERROR,
  OP,
  parseEntries,
  type FtpPayload,
} from "../../core/mavlink-ftp.ts";
import { silentLogger } from "../../core/logger.ts";
import { mavlinkFtpAdapter, mavlinkFtpOptionsSchema } from "../../storage/mavlink-ftp/mavlink-ftp.ts";
import { FtpServer } from "./ftp-server.ts";

const GCS = "255:190";
let seq = 100;

function ask(
  server: FtpServer,
  fields: Partial<FtpPayload> & { opcode: number },
  owner = GCS,
  again = false,
): FtpPayload {
  if (!again) seq += 1;
  const raw = server.handle(owner, decodePayload(encodePayload({ seq, ...fields })) as FtpPayload);
  assert.ok(raw, "an answer");
  const answer = decodePayload(raw);
  assert.ok(answer);
  assert.equal(answer.seq, (seq + 1) & 0xffff, "answered under the request's number + 1");
  assert.equal(answer.reqOpcode, fields.opcode);
  return answer;
}

const path = (text: string) => Buffer.from(`${text}\0`);

describe("FtpServer", () => {
  let dir: string;
  let server: FtpServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-ftp-server-"));
    await mkdir(join(dir, "2024-05-01"));
    for (let i = 0; i < 30; i++)
      await writeFile(join(dir, "2024-05-01", `log_${String(i).padStart(2, "0")}.ulg`), "x".repeat(i));
    await writeFile(join(dir, "big.ulg"), Buffer.alloc(1000, 7));
    server = new FtpServer({ dir, mount: "/fs/microsd/log", listWithTime: true });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("lists in pages by entry offset and ends with EOF", () => {
    const names: string[] = [];
    for (let offset = 0; ;) {
      const answer = ask(server, {
        opcode: OP.ListDirectory,
        offset,
        data: path("/fs/microsd/log/2024-05-01"),
      });
      if (answer.opcode === OP.Nak) {
        assert.equal(answer.data[0], FTP_ERROR.EOF);
        break;
      }
      const { count, entries } = parseEntries(answer.data);
      assert.ok(count > 0 && answer.data.length <= 239);
      names.push(...entries.map((e) => `${e.name}=${e.size ?? "?"}`));
      offset += count;
    }
    assert.equal(names.length, 30, "more than one page");
    assert.equal(names[29], "log_29.ulg=29");
  });

  it("answers a repeated request from its last answer without doing it again", async () => {
    await writeFile(join(dir, "gone.ulg"), "bye");
    const first = ask(server, { opcode: OP.RemoveFile, data: path("/fs/microsd/log/gone.ulg") });
    assert.equal(first.opcode, OP.Ack);
    const repeat = ask(server, { opcode: OP.RemoveFile, data: path("/fs/microsd/log/gone.ulg") }, GCS, true);
    assert.equal(repeat.opcode, OP.Ack, "the lost ACK again, not FileNotFound");
    const fresh = ask(server, { opcode: OP.RemoveFile, data: path("/fs/microsd/log/gone.ulg") });
    assert.deepEqual([fresh.opcode, fresh.data[0]], [OP.Nak, FTP_ERROR.FileNotFound]);
  });

  it("streams a burst to the end with burst_complete on the last packet; one session, owned", () => {
    const opened = ask(server, { opcode: OP.OpenFileRO, data: path("@MAV_LOG/big.ulg") });
    assert.equal(opened.data.readUInt32LE(0), 1000);
    const busy = ask(server, { opcode: OP.OpenFileRO, data: path("@MAV_LOG/big.ulg") }, "254:190");
    assert.deepEqual([busy.opcode, busy.data[0]], [OP.Nak, FTP_ERROR.NoSessionsAvailable]);
    seq += 1;
    assert.equal(
      server.handle(
        GCS,
        decodePayload(
          encodePayload({ seq, opcode: OP.BurstReadFile, session: opened.session, offset: 100 }),
        ) as FtpPayload,
      ),
      undefined,
    );
    const packets: FtpPayload[] = [];
    for (let raw = server.nextBurstPacket(); raw; raw = server.nextBurstPacket())
      packets.push(decodePayload(raw) as FtpPayload);
    assert.deepEqual(
      packets.map((p) => [p.offset, p.data.length, p.burstComplete]),
      [
        [100, 239, false],
        [339, 239, false],
        [578, 239, false],
        [817, 183, true],
      ],
    );
    const eof = ask(server, {
      opcode: OP.ReadFile,
      session: opened.session,
      offset: 1000,
      data: Buffer.alloc(239),
    });
    assert.deepEqual([eof.opcode, eof.data[0]], [OP.Nak, FTP_ERROR.EOF]);
    const other = ask(
      server,
      { opcode: OP.ReadFile, session: opened.session, offset: 0, data: Buffer.alloc(10) },
      "254:190",
    );
    assert.deepEqual([other.opcode, other.data[0]], [OP.Nak, FTP_ERROR.InvalidSession]);
    assert.equal(ask(server, { opcode: OP.TerminateSession, session: opened.session }).opcode, OP.Ack);
  });

  it("refuses paths outside its log folder and unknown opcodes", () => {
    const outside = ask(server, { opcode: OP.OpenFileRO, data: path("/fs/microsd/log/../../etc/passwd") });
    assert.deepEqual([outside.opcode, outside.data[0]], [OP.Nak, FTP_ERROR.FileNotFound]);
    const unknown = ask(server, { opcode: 99 });
    assert.deepEqual([unknown.opcode, unknown.data[0]], [OP.Nak, FTP_ERROR.UnknownCommand]);
  });
});

describe("ferry sim mavlink", { timeout: 60_000 }, () => {
  it("serves generated logs that the adapter reads and removes", async () => {
    const logs = await mkdtemp(join(tmpdir(), "ferry-sim-mavlink-"));
    const cli = new URL("../../../bin/ferry.js", import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [
        cli,
        "sim",
        "mavlink",
        "--udp",
        "127.0.0.1:0",
        "--logs",
        logs,
        "--generate",
        "2",
        "--log-size",
        "5000",
        "--loss",
        "0.02",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      const url = await waitFor("the simulator's url", () => /device url: (\S+)/.exec(output)?.[1], {
        timeoutMs: 30_000,
        detail: () => output,
      });
      const drone = mavlinkFtpAdapter.create(
        mavlinkFtpOptionsSchema.parse({ url, root: "/fs/microsd/log" }),
        {
          name: "drone",
          logger: silentLogger,
          baseDir: "/",
        },
      );
      try {
        const listed = [];
        for await (const entry of drone.list("2024-05-01")) listed.push(`${entry.path}=${entry.size ?? "?"}`);
        assert.deepEqual(listed, ["2024-05-01/12_00_00.ulg=5000", "2024-05-01/12_01_00.ulg=5000"]);
        const chunks: Buffer[] = [];
        for await (const chunk of await drone.read("2024-05-01/12_00_00.ulg")) chunks.push(chunk as Buffer);
        assert.equal(Buffer.concat(chunks).subarray(0, 4).toString(), "ULog");
        await drone.remove("2024-05-01/12_00_00.ulg");
        assert.deepEqual(await readdir(join(logs, "2024-05-01")), ["12_01_00.ulg"]);
      } finally {
        await drone.close();
      }
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      await rm(logs, { recursive: true, force: true });
    }
  });
});
