import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { after, describe, test } from "node:test";
import { FakeClock } from "../../core/clock.ts";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { dialects, sqliteDialect } from "../../store/test-support.ts";
import { testPostgres } from "../../../test/servers/postgres.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { openLibrary, type Library } from "./library.ts";

const FIXTURES = join(import.meta.dirname, "../../../test/fixtures/gcode");
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
/** A stream of `bytes` in pieces, as an upload arrives. */
const upload = (bytes: Buffer, piece = 16 * 1024) =>
  Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += piece) yield bytes.subarray(at, at + piece);
    })(),
  );

/** Every file under the library folder, relative: content files and temps. */
async function filesUnder(dataDir: string): Promise<string[]> {
  const root = join(dataDir, "library");
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

const pg = await testPostgres();
after(() => pg.close());

for (const dialect of dialects(pg)) {
  describe(`the library on ${dialect.label}`, () => {
    after(() => dialect.cleanup());
    const clock = new FakeClock(1_796_000_000_000);
    const fresh = async (options: { maxBytes?: number } = {}) => {
      const storeOptions = await dialect.fresh();
      const store = await dialect.open(storeOptions);
      const library = await openLibrary({ store, dataDir: storeOptions.dataDir, clock, ...options });
      return { library, dataDir: storeOptions.dataDir };
    };

    test(
      "an upload is stored by its sha256 with the metadata its slicer wrote",
      dialect.testOptions,
      async () => {
        const { library, dataDir } = await fresh();
        const bytes = fixture("cube-mini-png.gcode");
        const { file, duplicate } = await library.add(upload(bytes), {
          name: "cube.gcode",
          uploadedBy: "ada",
        });
        assert.equal(duplicate, false);
        assert.equal(file.sha256, sha256(bytes));
        assert.deepEqual(
          {
            name: file.name,
            size: file.size,
            kind: file.kind,
            uploadedBy: file.uploadedBy,
            createdAt: file.createdAt,
          },
          {
            name: "cube.gcode",
            size: bytes.length,
            kind: "gcode",
            uploadedBy: "ada",
            createdAt: clock.now(),
          },
        );
        assert.equal(file.metadata?.printerModel, "MINI");
        assert.equal(file.metadata.estimatedTimeS, 541); // "9m 1s" in the fixture's comments
        assert.deepEqual(file.thumbnails, [
          { format: "png", width: 16, height: 16, bytes: file.thumbnails[0]?.bytes },
          { format: "png", width: 220, height: 124, bytes: file.thumbnails[1]?.bytes },
        ]);
        assert.deepEqual(await filesUnder(dataDir), [`${file.sha256.slice(0, 2)}/${file.sha256}`]);
        assert.deepEqual(await library.get(file.id), file, "as the store gives it back");
        assert.deepEqual(await library.list(), [file]);

        const download = await library.read(file.id);
        assert.equal(await text(download.stream), bytes.toString("utf8"));
        const picture = await library.thumbnail(file.id, 1);
        assert.deepEqual([picture.format, picture.width, picture.height], ["png", 220, 124]);
        assert.equal(picture.data.toString("latin1", 1, 4), "PNG");
        await assert.rejects(library.thumbnail(file.id, 2), (e) => isFerryError(e, "NOT_FOUND"));
      },
    );

    test("the same bytes again, under another name, are the same entry", dialect.testOptions, async () => {
      const { library, dataDir } = await fresh();
      const bytes = fixture("cube-mini.bgcode");
      const first = await library.add(upload(bytes), { name: "cube.bgcode" });
      clock.advance(1000);
      const again = await library.add(upload(bytes, 999), { name: "copy of cube.bgcode", uploadedBy: "bob" });
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.file, first.file, "the first entry, under its first name");
      assert.equal(await library.count(), 1);
      assert.deepEqual(await filesUnder(dataDir), [`${first.file.sha256.slice(0, 2)}/${first.file.sha256}`]);

      // At the same moment: one entry, one of the two answers says duplicate.
      const other = fixture("cube-mini-qoi.gcode");
      const both = await Promise.all([
        library.add(upload(other), { name: "a.gcode" }),
        library.add(upload(other), { name: "b.gcode" }),
      ]);
      assert.equal(both[0].file.id, both[1].file.id);
      assert.deepEqual(both.map((added) => added.duplicate).sort(), [false, true]);
      assert.equal(await library.count(), 2);
      assert.equal((await filesUnder(dataDir)).length, 2, "no temp left behind");
    });

    test(
      "the farm reads a job's file through a storage adapter over the library",
      dialect.testOptions,
      async () => {
        const { library } = await fresh();
        const bytes = fixture("cube-mini.gcode");
        const { file } = await library.add(upload(bytes), { name: "cube.gcode" });
        const files = library.jobFiles(silentLogger);
        const opened = await files.open({ id: file.id, name: "cube.gcode", sha256: file.sha256 });
        assert.equal(opened.size, bytes.length);
        const read = await opened.storage.read(opened.path);
        const chunks: Buffer[] = [];
        for await (const chunk of read) chunks.push(Buffer.from(chunk as Uint8Array));
        assert.ok(Buffer.concat(chunks).equals(bytes));
        await assert.rejects(files.open({ id: "no-such-file", name: "gone.gcode", sha256: null }), {
          code: "NOT_FOUND",
          message: /gone\.gcode is not in the file library/,
        });
      },
    );

    test("past the size limit: NO_SPACE naming the file, nothing kept", dialect.testOptions, async () => {
      const { library, dataDir } = await fresh({ maxBytes: 50_000 });
      const bytes = fixture("cube-mini.gcode");
      assert.ok(bytes.length > 50_000);
      let pulled = 0;
      // Pulled one piece at a time (a Readable would read ahead of the library).
      const source = (async function* () {
        for (let at = 0; at < bytes.length; at += 10_000) {
          pulled = at + 10_000;
          yield await Promise.resolve(bytes.subarray(at, at + 10_000));
        }
      })();
      await assert.rejects(library.add(source, { name: "big.gcode" }), (error) => {
        assert.ok(isFerryError(error, "NO_SPACE"));
        assert.equal(error.message, "big.gcode is larger than the library's limit of 50000 bytes");
        return true;
      });
      assert.ok(pulled <= 60_000, `reading stopped at the limit (${pulled} bytes pulled)`);
      assert.equal(await library.count(), 0);
      assert.deepEqual(await filesUnder(dataDir), []);
      // Exactly the limit is fine.
      const { library: exact } = await fresh({ maxBytes: bytes.length });
      assert.equal((await exact.add(upload(bytes), { name: "exact.gcode" })).file.size, bytes.length);
    });

    test(
      "a name that is not a print file's is refused before a byte is read",
      dialect.testOptions,
      async () => {
        const { library } = await fresh();
        let read = false;
        const source = Readable.from(
          (function* () {
            read = true;
            yield Buffer.from("G28\n");
          })(),
        );
        for (const [name, pattern] of [
          ["cube.stl", /cube\.stl: not a print file; the library takes \.gcode, \.bgcode and \.3mf/],
          ["../etc/cube.gcode", /holds a folder separator/],
          ["", /is empty/],
          ["a\nb.gcode", /holds a control character/],
          [`${"x".repeat(250)}.gcode`, /longer than 255 bytes/],
        ] as const) {
          await assert.rejects(library.add(source, { name }), (error) => {
            assert.ok(isFerryError(error, "NAME_INVALID"), String(error));
            assert.match(error.message, pattern);
            return true;
          });
        }
        assert.equal(read, false);
      },
    );

    test("an aborted upload keeps nothing", dialect.testOptions, async () => {
      const { library, dataDir } = await fresh();
      const controller = new AbortController();
      const bytes = fixture("cube-mini.gcode");
      const source = Readable.from(
        (function* () {
          yield bytes.subarray(0, 1000);
          controller.abort();
          yield bytes.subarray(1000);
        })(),
      );
      await assert.rejects(library.add(source, { name: "cube.gcode", signal: controller.signal }), (e) =>
        isFerryError(e, "ABORTED"),
      );
      assert.deepEqual(await filesUnder(dataDir), []);
      assert.equal(await library.count(), 0);
    });

    test("a malformed file is kept, with no metadata and the reason", dialect.testOptions, async () => {
      const { library } = await fresh();
      const bgcode = fixture("cube-mini.bgcode");
      // Cut inside its first block (file metadata, bytes 10 to 51): nothing to read.
      const { file } = await library.add(upload(bgcode.subarray(0, 30)), { name: "broken.bgcode" });
      assert.equal(file.metadata, null);
      assert.equal(
        file.noMetadataReason,
        "no metadata read: file metadata (block at byte 10): truncated, the file ends 21 bytes early",
      );
      assert.deepEqual(await library.get(file.id), file);
      // Cut inside the second: what the first block said, and the cut.
      const partial = await library.add(upload(bgcode.subarray(0, 60)), { name: "partial.bgcode" });
      const printerBlockEnd = 51 + 8 + 2 + bgcode.readUInt32LE(51 + 4) + 4; // uncompressed: header, encoding, data, CRC32
      assert.deepEqual(partial.file.metadata, {
        notes: [
          `printer metadata (block at byte 51): truncated, the file ends ${printerBlockEnd - 60} bytes early`,
        ],
        slicer: "PrusaSlicer",
        slicerVersion: "2.5.0",
      });
      const garbage = await library.add(upload(Buffer.from([0, 1, 2, 3, 255])), { name: "noise.3mf" });
      assert.deepEqual(
        { metadata: garbage.file.metadata, reason: garbage.file.noMetadataReason },
        { metadata: null, reason: "not a ZIP archive: 5 bytes" },
      );
    });

    test(
      "a file a job uses is not removed; an unused one goes with its bytes",
      dialect.testOptions,
      async () => {
        const { library, dataDir } = await fresh();
        const { file } = await library.add(upload(fixture("cube-mini-sliced.3mf")), { name: "cube.3mf" });
        const asked: string[] = [];
        let used = true;
        const inUse = (id: string) => {
          asked.push(id);
          return Promise.resolve(used);
        };
        await assert.rejects(library.remove(file.id, { inUse }), (error) => {
          assert.ok(isFerryError(error, "CONFLICT"));
          assert.equal(error.message, "cube.3mf is used by a print job and cannot be deleted");
          return true;
        });
        assert.deepEqual(asked, [file.id]);
        assert.deepEqual(await library.get(file.id), file);
        assert.equal((await filesUnder(dataDir)).length, 1);

        used = false;
        await library.remove(file.id, { inUse });
        assert.equal(await library.get(file.id), undefined);
        assert.deepEqual(await filesUnder(dataDir), []);
        await assert.rejects(library.remove(file.id, { inUse }), (e) => isFerryError(e, "NOT_FOUND"));
        await assert.rejects(library.read(file.id), (e) => isFerryError(e, "NOT_FOUND"));

        // Uploaded again after removal: a new entry.
        const again = await library.add(upload(fixture("cube-mini-sliced.3mf")), { name: "cube.3mf" });
        assert.equal(again.duplicate, false);
        assert.notEqual(again.file.id, file.id);
      },
    );
  });
}

describe("kill -9 in the middle of an upload", () => {
  const dialect = sqliteDialect();
  after(() => dialect.cleanup());

  test("leaves no file under a final name; the temp is swept once stale, a fresh one is kept", async () => {
    const options = await dialect.fresh();
    // A child process uploads a stream that never ends: 64 KiB, then it waits forever.
    const script = `
      import { Readable } from "node:stream";
      import { openStore } from ${JSON.stringify(join(import.meta.dirname, "../../store/store.ts"))};
      import { openLibrary } from ${JSON.stringify(join(import.meta.dirname, "library.ts"))};
      const store = await openStore({ dataDir: ${JSON.stringify(options.dataDir)} });
      const library = await openLibrary({ store, dataDir: ${JSON.stringify(options.dataDir)} });
      // A stream waiting for data holds no handle: without a timer the process would end (an
      // unsettled await) once the first bytes are written, maybe before the test saw them.
      setInterval(() => undefined, 60_000);
      const endless = new Readable({ read() {} });
      endless.push(Buffer.alloc(65536, 0x47));
      await library.add(endless, { name: "endless.gcode" });
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const temps = join(options.dataDir, "library", "tmp");
    const temp = await waitFor(
      "the child's temp file to hold 64 KiB",
      async () => {
        if (child.exitCode !== null) throw new Error(`the child exited: ${stderr}`);
        const names = await readdir(temps).catch(() => []);
        const name = names[0];
        return name && (await stat(join(temps, name))).size === 65536 ? name : undefined;
      },
      { detail: () => stderr },
    );
    child.kill("SIGKILL");
    await exited;
    assert.deepEqual(await filesUnder(options.dataDir), [`tmp/${temp}`], "only the temp");

    // Another process's upload in progress: its temp was written a moment ago.
    const store = await dialect.open(options);
    const clock = new FakeClock(Date.now());
    const justOpened = await openLibrary({ store, dataDir: options.dataDir, clock });
    assert.equal(await justOpened.count(), 0);
    assert.deepEqual(await filesUnder(options.dataDir), [`tmp/${temp}`], "a fresh temp is kept");

    // An hour later, nobody has written to it: a crash's leftover.
    const old = new Date(Date.now() - 61 * 60 * 1000);
    await utimes(join(temps, temp), old, old);
    const later: Library = await openLibrary({ store, dataDir: options.dataDir, clock });
    assert.deepEqual(await filesUnder(options.dataDir), []);
    assert.equal(await later.sweep(), 0);
  });
});
