/** What is particular to PrusaLink: short-lived nonces, one transfer at a time, the printed file, states. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { describe, test } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { PrusaLinkSim, type PrusaLinkSimOptions } from "../../sim/prusalink/index.ts";
import { jobFilePath, openPrusaLinkDriver } from "./driver.ts";
import { openPrusaLinkStorage, type ClientTuning } from "./storage.ts";
import { prusalinkOptionsSchema, type PrusaLinkOptions } from "./options.ts";
import { rejectsWith } from "../../../test/conformance/storage-helpers.ts";

const PASSWORD = "quirks";
const context = { name: "mk4-test", logger: silentLogger, baseDir: "/" };
const options = (sim: PrusaLinkSim): PrusaLinkOptions => ({
  url: sim.url,
  username: "maker",
  password: new Secret(PASSWORD),
});

async function withSim(
  simOptions: PrusaLinkSimOptions,
  fn: (sim: PrusaLinkSim) => Promise<void>,
): Promise<void> {
  const sim = await PrusaLinkSim.start({ password: PASSWORD, ...simOptions });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

const bytes = (size: number, fill = 1) => Readable.from([Buffer.alloc(size, fill)]);

void describe("Digest nonces that live five seconds", () => {
  void test("an upload after the nonce expired fetches a fresh one first", async () => {
    let now = 1_700_000_000_000;
    await withSim({ clock: () => now }, async (sim) => {
      const storage = openPrusaLinkStorage(options(sim), context, { clock: () => now });
      try {
        await storage.mkdir("jobs");
        now += 6_000;
        const entry = await storage.write("jobs/part.gcode", bytes(1000), { size: 1000 });
        assert.equal(entry.size, 1000);
        now += 4_000;
        await storage.mkdir("more");
      } finally {
        await storage.close();
      }
    });
  });

  void test("a nonce that goes stale while a long upload runs is renewed for the next request", async () => {
    let now = 1_700_000_000_000;
    await withSim({ clock: () => now }, async (sim) => {
      const storage = openPrusaLinkStorage(options(sim), context, { clock: () => now });
      try {
        async function* slowly() {
          for (let i = 0; i < 10; i++) {
            now += 2_000; // 20 s of upload in all: the nonce is long dead when it ends
            yield Buffer.alloc(10_000, i);
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
        const entry = await storage.write("long.gcode", slowly(), { size: 100_000 });
        assert.equal(entry.size, 100_000, "the size check after the upload retried with a new nonce");
        const content = Buffer.from(await text(await storage.read("long.gcode")), "latin1");
        assert.equal(content.length, 100_000);
      } finally {
        await storage.close();
      }
    });
  });

  void test("without the refresh, a stale nonce on an upload is TRANSIENT (its body cannot be replayed)", async () => {
    let now = 1_700_000_000_000;
    await withSim({ clock: () => now }, async (sim) => {
      const tuning: ClientTuning = { clock: () => now, nonceRefreshMs: Number.POSITIVE_INFINITY };
      const storage = openPrusaLinkStorage(options(sim), context, tuning);
      try {
        await storage.mkdir("a");
        now += 6_000;
        const error = await rejectsWith(
          storage.write("a/x.gcode", bytes(5000), { size: 5000 }),
          "TRANSIENT",
          /nonce/,
        );
        assert.equal(error.retryable, true);
        assert.deepEqual(sim.files(), []);
        // The client learned that nonces die sooner than it assumed and now refreshes in time
        // (without learning, this 5.5 s old nonce would be refused again).
        now += 5_500;
        assert.equal((await storage.write("a/x.gcode", bytes(5000), { size: 5000 })).size, 5000);
      } finally {
        await storage.close();
      }
    });
  });

  void test("a wrong password is AUTH; an API key works instead of Digest", async () => {
    await withSim({ apiKey: "the-key" }, async (sim) => {
      const wrong = openPrusaLinkStorage({ ...options(sim), password: new Secret("nope") }, context);
      const keyed = openPrusaLinkStorage({ url: sim.url, api_key: new Secret("the-key") }, context);
      try {
        const error = await rejectsWith(wrong.stat("x.gcode"), "AUTH", /mk4-test/);
        assert.equal(error.retryable, false);
        assert.doesNotMatch(error.message, /nope/);
        // The driver says so in its snapshot, never "offline" and never by throwing.
        const refused = openPrusaLinkDriver({ ...options(sim), password: new Secret("nope") }, context);
        try {
          const snapshot = await refused.snapshot();
          assert.equal(snapshot.connection, "auth_failed");
          assert.match(snapshot.offlineReason ?? "", /mk4-test/);
        } finally {
          await refused.close();
        }
        await keyed.write("k.gcode", bytes(10), { size: 10 });
        assert.deepEqual(
          sim.files().map((f) => f.path),
          ["k.gcode"],
        );
      } finally {
        await wrong.close();
        await keyed.close();
      }
    });
  });
});

void describe("printer answers as Ferry errors", () => {
  void test("409 BUSY while another transfer runs, naming the printer and the path", async () => {
    await withSim({ rate: 400_000 }, async (sim) => {
      const first = openPrusaLinkStorage(options(sim), context);
      const second = openPrusaLinkStorage(options(sim), context);
      try {
        const running = first.write("big.gcode", bytes(300_000), { size: 300_000 });
        await new Promise((resolve) => setTimeout(resolve, 150));
        const error = await rejectsWith(
          second.write("other.gcode", bytes(100), { size: 100 }),
          "BUSY",
          /mk4-test.*other\.gcode/,
        );
        assert.equal(error.retryable, true);
        assert.equal((await running).size, 300_000);
      } finally {
        await first.close();
        await second.close();
      }
    });
  });

  void test("the printed file can be neither deleted nor replaced", async () => {
    await withSim({}, async (sim) => {
      const storage = openPrusaLinkStorage(options(sim), context);
      try {
        await storage.write("jobs/part.gcode", bytes(100), { size: 100 });
        sim.startPrint("jobs/part.gcode");
        await rejectsWith(storage.remove("jobs/part.gcode"), "BUSY", /being printed/);
        await rejectsWith(storage.write("jobs/part.gcode", bytes(50), { size: 50 }), "BUSY", /File is busy/);
        await rejectsWith(storage.remove("jobs"), "NOT_EMPTY");
        assert.deepEqual(sim.files(), [
          { path: "jobs/part.gcode", size: 100, mTimestamp: sim.files()[0]?.mTimestamp },
        ]);
      } finally {
        await storage.close();
      }
    });
  });

  void test("503 is UNAVAILABLE, 500 TRANSIENT, 507 NO_SPACE, a dropped upload TRANSIENT", async () => {
    await withSim({ capacity: 10_000 }, async (sim) => {
      const storage = openPrusaLinkStorage(options(sim), context);
      try {
        await storage.mkdir("d");
        sim.injectFault({ status: 503 });
        assert.equal((await rejectsWith(storage.stat("d"), "UNAVAILABLE", /503/)).retryable, true);
        sim.injectFault({ status: 500 });
        await rejectsWith(storage.stat("d"), "TRANSIENT", /500/);
        await rejectsWith(storage.write("d/big.gcode", bytes(20_000), { size: 20_000 }), "NO_SPACE", /507/);
        sim.injectFault({ resetAfterBytes: 1000 });
        const dropped = await rejectsWith(
          storage.write("d/cut.gcode", bytes(5000), { size: 5000 }),
          "TRANSIENT",
        );
        assert.equal(dropped.retryable, true);
        assert.deepEqual(sim.files(), []);
        assert.equal((await storage.write("d/cut.gcode", bytes(5000), { size: 5000 })).size, 5000);
        assert.deepEqual(await storage.usage(), { freeBytes: 5000, totalBytes: 10_000, usedBytes: 5000 });
      } finally {
        await storage.close();
      }
    });
  });

  void test("listings name entries by their long names although the printer lists 8.3 names", async () => {
    await withSim({}, async (sim) => {
      const storage = openPrusaLinkStorage(options(sim), context);
      try {
        await storage.write("Customer Parts/Spice_Harvester_0.3mm_PLA_MK4IS_12h45m.bgcode", bytes(10), {
          size: 10,
        });
        const listed = [];
        for await (const entry of storage.list("customer parts")) listed.push(entry);
        assert.deepEqual(
          listed.map((e) => [e.path, e.type, e.size]),
          [["customer parts/Spice_Harvester_0.3mm_PLA_MK4IS_12h45m.bgcode", "file", undefined]],
        );
        assert.equal((await storage.stat("CUSTOM~1/SPICE_~1.BGC")).size, 10, "8.3 names resolve too");
      } finally {
        await storage.close();
      }
    });
  });
});

void describe("driver", () => {
  void test("a snapshot in each printer state", async () => {
    let now = 1_700_000_000_000;
    await withSim({ clock: () => now }, async (sim) => {
      const driver = openPrusaLinkDriver(options(sim), context, { clock: () => now });
      try {
        const storage = driver.storage();
        assert.equal(driver.storage(), storage, "one storage instance");
        await storage.write("Kunden/Halter für Regal.gcode", bytes(100), { size: 100 });
        const idle = await driver.snapshot();
        assert.equal(idle.connection, "online");
        assert.equal(idle.activity, "idle");
        assert.equal(idle.rawState, "IDLE");
        assert.equal(idle.job, undefined);
        assert.deepEqual(
          idle.temperatures.map((t) => t.name),
          ["tool0", "bed"],
        );
        assert.equal(idle.observedAt, now);

        for (const [state, activity] of [
          ["READY", "idle"],
          ["BUSY", "busy"],
          ["IDLE", "idle"],
        ] as const) {
          sim.setState(state);
          assert.equal((await driver.snapshot()).activity, activity, state);
        }

        await driver.startJob("kunden/halter für regal.gcode");
        now += 150_000;
        const printing = await driver.snapshot();
        assert.equal(printing.activity, "printing");
        assert.deepEqual(printing.job, {
          id: "1",
          file: "Kunden/Halter für Regal.gcode",
          startedAt: now - 150_000,
          progress: 0.25,
          elapsedS: 150,
          remainingS: 450,
        });
        await rejectsWith(driver.startJob("Kunden/Halter für Regal.gcode"), "BUSY");

        await driver.pause();
        now += 1_000_000;
        const paused = await driver.snapshot();
        assert.equal(paused.activity, "paused");
        assert.equal(paused.job?.progress, 0.25);
        await driver.resume();
        sim.setState("ATTENTION");
        assert.equal((await driver.snapshot()).activity, "attention");
        sim.setState("PRINTING");
        now += 450_000;
        const finished = await driver.snapshot();
        assert.equal(finished.activity, "finished");
        assert.equal(finished.job?.progress, 1);
        assert.equal(finished.job.file, "Kunden/Halter für Regal.gcode");

        sim.setState("IDLE");
        await driver.startJob("Kunden/Halter für Regal.gcode");
        await driver.cancel();
        assert.equal((await driver.snapshot()).activity, "stopped");
        // Nothing runs: a clear error, not a silent success.
        await assert.rejects(driver.cancel(), (e: unknown) => isFerryError(e, "CONFLICT"));
        sim.setState("ERROR");
        assert.equal((await driver.snapshot()).activity, "error");
      } finally {
        await driver.close();
      }
    });
  });

  void test("an MK3 prints from /local, whose display path starts with the storage's name", async () => {
    await withSim({ model: "MK3" }, async (sim) => {
      const driver = openPrusaLinkDriver(options(sim), context);
      try {
        await driver.storage().write("examples/benchy.gcode", bytes(10), { size: 10 });
        assert.equal(await driver.storage().storageName(), "local");
        await driver.startJob("examples/benchy.gcode");
        assert.equal((await driver.snapshot()).job?.file, "examples/benchy.gcode");
      } finally {
        await driver.close();
      }
    });
  });

  void test("an unreachable or failing printer is offline, never an exception", async () => {
    const sim = await PrusaLinkSim.start({ password: PASSWORD });
    const driver = openPrusaLinkDriver(options(sim), context, { connectTimeoutMs: 1000 });
    try {
      sim.injectFault({ status: 503, count: 3 });
      assert.equal((await driver.snapshot()).connection, "offline");
      await sim.close();
      const offline = await driver.snapshot();
      assert.equal(offline.connection, "offline");
      assert.deepEqual(offline.temperatures, []);
      await rejectsWith(driver.storage().stat("x.gcode"), "UNAVAILABLE", /mk4-test.*unreachable/);
    } finally {
      await driver.close();
    }
  });

  void test("a status request whose connection drops is sent once more", async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      if (++requests === 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ printer: { state: "IDLE" } }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const driver = openPrusaLinkDriver(
      { url: `http://127.0.0.1:${port}`, api_key: new Secret("k") },
      context,
    );
    try {
      assert.equal((await driver.snapshot()).connection, "online");
      assert.equal(requests, 2);
    } finally {
      await driver.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  void test("the printed file's path is read from display_path, path and the names", () => {
    const file = { name: "PART~1.GCO", m_timestamp: 0 };
    assert.equal(
      jobFilePath(
        { ...file, path: "/usb/SUB~1", display_path: "/usb/Sub dir", display_name: "part.gcode" },
        "usb",
      ),
      "Sub dir/part.gcode",
    );
    assert.equal(
      jobFilePath(
        {
          ...file,
          path: "/usb/SUB~1/PART~1.GCO",
          display_path: "/usb/Sub dir/part.gcode",
          display_name: "part.gcode",
        },
        "usb",
      ),
      "Sub dir/part.gcode",
    );
    assert.equal(jobFilePath({ ...file, path: "/usb" }, "usb"), "PART~1.GCO");
    assert.equal(
      jobFilePath({ ...file, path: "/sdcard", display_name: "x.gcode" }, "local"),
      undefined,
      "another storage",
    );
  });
});

void test("options: a password or an API key, never both; an http(s) URL", () => {
  const ok = prusalinkOptionsSchema.safeParse({ url: "http://10.0.0.5", username: "maker", password: "pw" });
  assert.ok(ok.success);
  assert.ok(ok.data.password instanceof Secret);
  assert.equal(JSON.stringify(ok.data).includes("pw"), false);
  assert.ok(
    prusalinkOptionsSchema.safeParse({ url: "http://10.0.0.5", api_key: "k", storage: "/USB" }).success,
  );
  for (const bad of [
    { url: "http://10.0.0.5" },
    { url: "http://10.0.0.5", password: "pw", api_key: "k" },
    { url: "ftp://10.0.0.5", password: "pw" },
    { url: "http://10.0.0.5", password: "pw", extra: 1 },
  ]) {
    assert.equal(prusalinkOptionsSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

void describe("what the firmware refuses", () => {
  void test("a file that is not G-code is UNSUPPORTED, not retryable; the adapter says which files it takes", async () => {
    await withSim({}, async (sim) => {
      const storage = openPrusaLinkStorage(options(sim), context);
      try {
        assert.deepEqual(storage.capabilities.fileTypes, [".gcode", ".bgcode", ".gco", ".g"]);
        await assert.rejects(storage.write("notes.txt", bytes(5), { size: 5 }), (error: unknown) => {
          assert.ok(isFerryError(error, "UNSUPPORTED"), String(error));
          assert.equal(error.retryable, false);
          assert.match(error.message, /Not a GCODE/);
          return true;
        });
        // What the adapter sends (Overwrite, Create-Folder: ?1) is what the firmware takes.
        await storage.write("deep/er/part.gcode", bytes(5), { size: 5 });
        await storage.write("deep/er/part.gcode", bytes(6), { size: 6 });
        assert.deepEqual(
          sim.files().map((f) => `${f.path}:${f.size}`),
          ["deep/er/part.gcode:6"],
        );
      } finally {
        await storage.close();
      }
    });
  });
});
