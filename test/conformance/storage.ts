/**
 * The shared StorageAdapter conformance suite. Every adapter runs it against a real server or a
 * faithful simulator, from a test file of a few lines next to the adapter. What is checked follows
 * the adapter's `capabilities`: where a missing capability is a checkable claim (no setModTime, no
 * rangeRead) the claim is tested; other tests whose capability is missing report themselves skipped.
 * A write-only target (a web form: `list` "none", no `read`) cannot tell what it holds: the harness's
 * `received()` says what its server got, and what only `stat` or listings could show is skipped.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { FerryError, isFerryError } from "../../src/core/errors.ts";
import { basename, pathKey } from "../../src/core/paths.ts";
import {
  assertCapabilitiesMatch,
  type Capabilities,
  type StorageAdapter,
  type UploadOptions,
} from "../../src/storage/adapter.ts";
import {
  assertSameBytes,
  collect,
  expectContent,
  expectFerryError,
  listOrNone,
  nameOfBytes,
  put,
  readAll,
  sourceOf,
  stallingSource,
} from "./storage-helpers.ts";

export interface StorageHarness {
  /**
   * Opens an adapter on the storage under test. The storage is empty before the first call; every
   * call returns a new instance over the same storage (used for persistence and resume checks).
   */
  open(): Promise<StorageAdapter>;
  /** Called once after the suite, after every adapter it opened is closed. */
  cleanup?(): Promise<void>;
  /** Bytes of the "large" round trip (default 1 MiB). */
  largeSize?: number;
  /** Ending of every file name the suite writes (default ".gcode": printers accept print files only). */
  suffix?: string;
  /** Time limit of each test in ms (default 30 000). */
  timeoutMs?: number;
  /**
   * Bytes of the file the resumable-upload tests interrupt halfway (default `largeSize`); make it a
   * few of the adapter's chunks (S3: three parts) so that half of it is more than one chunk.
   */
  resumeSize?: number;
  /**
   * Why this server cannot resume an upload the adapter could resume elsewhere (nginx refuses
   * ranged PUT): the resume test then checks that the upload starts over cleanly instead.
   */
  restartsUploads?: string;
  /**
   * Why this server's listings leave out names that start with a dot (nginx dav-ext): the
   * leading-dot test then checks that the listing leaves it out, and stat, read and remove.
   */
  hidesDotNames?: string;
  /**
   * Write-only targets (`list` "none" and no `read`), whose `stat` cannot tell what they hold: the
   * bytes the server last received for `path`, or undefined when it received none. Match by the
   * name the server recorded (so hostile names are checked to arrive intact), compared in NFC.
   */
  received?(path: string): Promise<Uint8Array | undefined>;
}

/** Names no target should choke on, each built for the target's capabilities (undefined: nothing to test). */
const HOSTILE_NAMES: [string, (c: Capabilities, ext: string) => string | undefined][] = [
  ["spaces", (_c, ext) => `with  some spaces ${ext}`],
  ["Cyrillic", (_c, ext) => `Привет мир${ext}`],
  [
    "#%?&+",
    (c, ext) => {
      const allowed = ["#", "%", "?", "&", "+"].filter((char) => !c.forbiddenChars.includes(char));
      return allowed.length === 0 ? undefined : `a${allowed.join("a")}z${ext}`;
    },
  ],
  ["a leading dot", (_c, ext) => `.hidden${ext}`],
  ["maxNameBytes bytes", (c, ext) => nameOfBytes(Math.min(c.maxNameBytes ?? 255, 255), ext)],
];

export function describeStorageConformance(label: string, harness: StorageHarness): void {
  const largeSize = harness.largeSize ?? 1024 * 1024;
  const ext = harness.suffix ?? ".gcode";
  const run = randomBytes(3).toString("hex");
  const opened = new Set<StorageAdapter>();
  let current: StorageAdapter | undefined;
  const adapter = (): StorageAdapter => {
    assert.ok(current, "the harness did not open an adapter");
    return current;
  };
  const caps = () => adapter().capabilities;
  const listable = () => caps().list !== "none";
  /** Nothing can be asked of the target about what it holds; its server's `received` tells. */
  const blind = () => !listable() && !caps().read;
  const receivedOf = (path: string) => {
    assert.ok(harness.received !== undefined, "a write-only target needs the harness's received()");
    return harness.received(path);
  };
  /** `path` holds `data`: read back, by `stat` size, or (write-only) as its server received it. */
  const expectStored = async (path: string, data: Uint8Array, a = adapter()) => {
    if (!blind()) return expectContent(a, path, data);
    const got = await receivedOf(path);
    assert.ok(got, `${path}: the server received nothing`);
    assertSameBytes(got, data, `${path} as received`);
  };
  /** Nothing is under `path`, or (write-only) its server received nothing for it. */
  const expectAbsent = async (path: string, what: string) => {
    if (!blind()) return expectFerryError(adapter().stat(path), "NOT_FOUND", what);
    assert.equal(await receivedOf(path), undefined, `${what}: the server received ${path}`);
  };
  /** Each test works in a folder of its own. */
  const folder = (slug: string) => `${slug}-${run}`;
  const key = (path: string) => pathKey(path, caps().caseInsensitive);
  const keysOf = async (dir: string) => (await collect(adapter().list(dir))).map((e) => key(e.path));
  const check = (name: string, body: (t: TestContext) => Promise<void> | void) => {
    it(name, { timeout: harness.timeoutMs ?? 30_000 }, body);
  };
  /** Reports the test skipped when `when` holds. */
  const skip = (t: TestContext, when: boolean, reason: string) => {
    if (when) t.skip(reason);
    return when;
  };
  /** Nothing (no file, no temp file) is left under the final name or beside it. */
  const expectNoFile = async (dir: string, path: string, what: string) => {
    await expectAbsent(path, `${what}: stat`);
    if (!listable()) return;
    const files = (await listOrNone(adapter(), dir)).filter((entry) => entry.type === "file");
    assert.deepEqual(files, [], `${what}: files left in ${dir}`);
  };

  describe(`${label}: storage conformance`, () => {
    before(async () => {
      current = await harness.open();
      opened.add(current);
    });
    after(async () => {
      for (const instance of opened) await instance.close();
      await harness.cleanup?.();
    });

    check("declares capabilities that agree with its methods", () => {
      assert.doesNotThrow(() => {
        assertCapabilitiesMatch(adapter());
      });
      const c = caps();
      assert.ok(Number.isInteger(c.maxConcurrency) && c.maxConcurrency >= 1, "maxConcurrency");
      assert.ok(c.modTimePrecisionMs === null || c.modTimePrecisionMs > 0, "modTimePrecisionMs");
      assert.ok(!c.setModTime || c.modTimePrecisionMs !== null, "setModTime needs a modTimePrecisionMs");
      assert.ok(c.write, "the suite needs a writable target");
      assert.ok(
        !blind() || harness.received !== undefined,
        "a write-only target needs the harness's received()",
      );
    });

    check("refuses names with its forbidden characters (NAME_INVALID)", async (t) => {
      if (skip(t, caps().forbiddenChars === "", "forbids no characters")) return;
      for (const char of caps().forbiddenChars) {
        const path = `${folder("forbidden")}/a${char}b${ext}`;
        await expectFerryError(put(adapter(), path, Buffer.from("x")), "NAME_INVALID", JSON.stringify(char));
      }
    });

    check("refuses names longer than maxNameBytes (NAME_INVALID)", async (t) => {
      const max = caps().maxNameBytes;
      if (skip(t, max === null, "names are unbounded")) return;
      const path = `${folder("too-long")}/${nameOfBytes((max ?? 0) + 1, ext)}`;
      await expectFerryError(put(adapter(), path, Buffer.from("x")), "NAME_INVALID", "long name");
    });

    check(
      "takes only its fileTypes: another file is UNSUPPORTED, not retryable, and not stored",
      async (t) => {
        const types = caps().fileTypes;
        if (skip(t, types === undefined, "takes any file")) return;
        assert.ok(types && types.length > 0, "fileTypes names at least one ending");
        for (const ending of types)
          assert.match(ending, /^\.[a-z0-9]+$/, "lower-case endings with their dot");
        const path = `${folder("file-types")}/notes.not-taken`;
        await assert.rejects(put(adapter(), path, Buffer.from("x")), (error: unknown) => {
          assert.ok(isFerryError(error, "UNSUPPORTED"), `expected UNSUPPORTED, got ${String(error)}`);
          assert.equal(error.retryable, false, "sending it again changes nothing");
          return true;
        });
        await expectAbsent(path, "the refused file");
      },
    );

    for (const size of [0, 1, largeSize]) {
      check(`round trip of ${size} B is byte-exact`, async () => {
        const path = `${folder(`round-trip-${size}`)}/file${ext}`;
        const data = randomBytes(size);
        const entry = await put(adapter(), path, data);
        assert.equal(entry.type, "file");
        assert.equal(key(entry.path), key(path), "write returns the path it wrote");
        if (entry.size !== undefined) assert.equal(entry.size, size, "write returns the size");
        await expectStored(path, data);
      });
    }

    check("write replaces an existing file", async () => {
      const dir = folder("replace");
      const path = `${dir}/file${ext}`;
      await put(adapter(), path, randomBytes(1000));
      const newer = randomBytes(10);
      await put(adapter(), path, newer);
      await expectStored(path, newer);
      if (listable()) assert.deepEqual(await keysOf(dir), [key(path)]);
    });

    for (const [what, given] of [
      ["shorter", 100],
      ["longer", 300],
    ] as const) {
      check(`write of a stream ${what} than size fails, leaving no file and the old content`, async (t) => {
        if (skip(t, caps().partialWritesVisible, "partial writes are visible on this target")) return;
        const dir = folder(`${what}-stream`);
        const path = `${dir}/file${ext}`;
        await expectFerryError(put(adapter(), path, randomBytes(given), { size: 200 }), undefined, what);
        await expectNoFile(dir, path, what);
        const old = randomBytes(50);
        await put(adapter(), path, old);
        await expectFerryError(put(adapter(), path, randomBytes(given), { size: 200 }), undefined, what);
        await expectStored(path, old);
      });
    }

    check("write creates missing parent folders", async () => {
      const dir = folder("parents");
      const data = randomBytes(20);
      await put(adapter(), `${dir}/a/b/c/file${ext}`, data);
      for (const path of blind() ? [] : [dir, `${dir}/a`, `${dir}/a/b`, `${dir}/a/b/c`]) {
        assert.equal((await adapter().stat(path)).type, "dir", path);
      }
      await expectStored(`${dir}/a/b/c/file${ext}`, data);
      if (listable()) assert.deepEqual(await keysOf(`${dir}/a/b`), [key(`${dir}/a/b/c`)]);
    });

    for (const [what, nameFor] of HOSTILE_NAMES) {
      check(`stores a name with ${what}`, async (t) => {
        const name = nameFor(caps(), ext);
        if (skip(t, name === undefined, "all of these characters are forbidden here")) return;
        const dir = folder(`hostile-${what.replace(/[^a-z]/gi, "")}`);
        const path = `${dir}/${name ?? ""}`;
        const data = randomBytes(300);
        await put(adapter(), path, data);
        await expectStored(path, data);
        const hidden = harness.hidesDotNames !== undefined && basename(path).startsWith(".");
        if (listable()) assert.deepEqual(await keysOf(dir), hidden ? [] : [key(path)]);
        if (blind()) return;
        await adapter().remove(path);
        await expectFerryError(adapter().stat(path), "NOT_FOUND", "after remove");
      });
    }

    check("finds a name written in NFD by its NFC form", async () => {
      const dir = folder("nfd");
      const nfc = `${dir}/Café ёжик${ext}`.normalize("NFC");
      const nfd = nfc.normalize("NFD");
      assert.notEqual(nfc, nfd);
      const data = randomBytes(40);
      await put(adapter(), nfd, data);
      if (blind()) return expectStored(nfc, data);
      assert.equal(key((await adapter().stat(nfc)).path), key(nfc), "stat by the NFC name");
      await expectStored(nfc, data);
      if (listable()) assert.deepEqual(await keysOf(dir), [key(nfc)]);
      await adapter().remove(nfc);
      await expectFerryError(adapter().stat(nfd), "NOT_FOUND", "removed by the NFC name");
    });

    check("lists a name written in NFC so that its NFC form matches", async (t) => {
      if (skip(t, !listable(), "cannot list")) return;
      const dir = folder("nfc");
      const name = `Café ёжик${ext}`.normalize("NFC");
      await put(adapter(), `${dir}/${name}`, Buffer.from("nfc"));
      const entries = await collect(adapter().list(dir));
      assert.deepEqual(
        entries.map((e) => basename(e.path).normalize("NFC")),
        [name],
      );
    });

    check("stat and listing give types, sizes and kept modification times", async (t) => {
      if (skip(t, blind(), "write-only: cannot tell what it holds")) return;
      const dir = folder("listing");
      const c = caps();
      const files = [
        { path: `${dir}/one${ext}`, data: randomBytes(3), modTime: Date.UTC(2024, 0, 2, 3, 4, 5, 678) },
        { path: `${dir}/two${ext}`, data: randomBytes(1000), modTime: Date.UTC(2023, 6, 1, 12, 0, 0, 1) },
      ];
      for (const f of files) await put(adapter(), f.path, f.data, { modTime: f.modTime });
      await put(adapter(), `${dir}/sub/inner${ext}`, randomBytes(7));
      const expectTime = (got: number | undefined, wanted: number, what: string) => {
        if (!c.setModTime) return;
        const close = got !== undefined && Math.abs(got - wanted) <= (c.modTimePrecisionMs ?? 0);
        assert.ok(close, `${what}: modTime ${got ?? "none"} ≠ ${wanted}`);
      };
      for (const f of files) {
        const entry = await adapter().stat(f.path);
        assert.equal(entry.type, "file");
        assert.equal(entry.size, f.data.length, `${f.path}: stat size`);
        expectTime(entry.modTime, f.modTime, `${f.path}: stat`);
      }
      assert.equal((await adapter().stat(`${dir}/sub`)).type, "dir");
      if (!listable()) return;
      const entries = new Map((await collect(adapter().list(dir))).map((e) => [key(e.path), e]));
      assert.deepEqual(
        [...entries.keys()].sort(),
        [...files.map((f) => key(f.path)), key(`${dir}/sub`)].sort(),
      );
      assert.equal(entries.get(key(`${dir}/sub`))?.type, "dir");
      assert.equal(entries.get(key(`${dir}/sub`))?.size, undefined, "folders carry no size");
      for (const f of files) {
        const entry = entries.get(key(f.path));
        assert.equal(entry?.type, "file");
        if (c.listSizes) assert.equal(entry.size, f.data.length, `${f.path}: listed size`);
        if (entry.modTime !== undefined) expectTime(entry.modTime, f.modTime, `${f.path}: listed`);
      }
      const root = await collect(adapter().list(""));
      assert.ok(
        root.some((e) => key(e.path) === key(dir) && e.type === "dir"),
        "the root lists the folder",
      );
      if (c.list === "recursive") {
        const all = await collect(adapter().list(dir, { recursive: true }));
        assert.ok(
          all.some((e) => key(e.path) === key(`${dir}/sub/inner${ext}`)),
          "recursive listing",
        );
      }
    });

    check("setModTime changes the modification time, or the target keeps a time of its own", async (t) => {
      if (skip(t, blind() && !caps().setModTime, "write-only: keeps no time it could tell")) return;
      const a = adapter();
      const path = `${folder("set-mod-time")}/file${ext}`;
      const wanted = Date.UTC(2022, 1, 3, 4, 5, 6, 789);
      const precision = caps().modTimePrecisionMs;
      if (!a.setModTime) {
        // The claim "cannot set times" must be true too: a wanted time is not what the target keeps.
        await put(a, path, Buffer.from("t"), { modTime: wanted });
        const got = (await a.stat(path)).modTime;
        if (precision === null) return;
        assert.ok(got !== undefined, "a target with modTimePrecisionMs keeps a time");
        assert.ok(Math.abs(got - wanted) > precision, `modTime ${got} was taken from the write`);
        return;
      }
      await put(a, path, Buffer.from("t"));
      await a.setModTime(path, wanted);
      const got = (await a.stat(path)).modTime ?? NaN;
      assert.ok(Math.abs(got - wanted) <= (precision ?? 0), `modTime ${got} ≠ ${wanted}`);
    });

    check("missing paths are NOT_FOUND", async (t) => {
      if (skip(t, blind(), "write-only: cannot tell what it holds")) return;
      const dir = folder("missing");
      await put(adapter(), `${dir}/present${ext}`, Buffer.from("here"));
      await expectFerryError(adapter().stat(`${dir}/nope${ext}`), "NOT_FOUND", "stat");
      await expectFerryError(
        adapter().stat(`${dir}-nope/nope${ext}`),
        "NOT_FOUND",
        "stat in a missing folder",
      );
      if (caps().read) await expectFerryError(adapter().read(`${dir}/nope${ext}`), "NOT_FOUND", "read");
      const opened = adapter().readWithEntry?.(`${dir}/nope${ext}`);
      if (opened) await expectFerryError(opened, "NOT_FOUND", "readWithEntry");
      if (listable()) await expectFerryError(collect(adapter().list(`${dir}/nope`)), "NOT_FOUND", "list");
    });

    check("reads a range from an offset, or refuses an offset (UNSUPPORTED)", async (t) => {
      if (skip(t, !caps().read, "cannot read")) return;
      const path = `${folder("range")}/file${ext}`;
      const data = randomBytes(10_000);
      await put(adapter(), path, data);
      if (!caps().rangeRead) {
        // Never the whole file where a range was asked for: a resumed read would duplicate bytes.
        await expectFerryError(readAll(adapter(), path, 4321), "UNSUPPORTED", "read from an offset");
        return;
      }
      for (const offset of [0, 1, 4321, 9_999, 10_000]) {
        assertSameBytes(await readAll(adapter(), path, offset), data.subarray(offset), `offset ${offset}`);
      }
    });

    check("readWithEntry, where offered: the entry stat gives and the file's bytes", async (t) => {
      const a = adapter();
      if (skip(t, a.readWithEntry === undefined, "no readWithEntry")) return;
      const path = `${folder("read-with-entry")}/file${ext}`;
      for (const data of [randomBytes(3_000), randomBytes(9 * 1024 * 1024)]) {
        await put(a, path, data);
        const opened = await a.readWithEntry?.(path);
        assert.ok(opened);
        assert.deepEqual(opened.entry, await a.stat(path));
        assertSameBytes(Buffer.concat(await opened.body.toArray()), data, `${data.length} bytes`);
      }
    });

    check("remove is idempotent and refuses non-empty folders", async (t) => {
      if (skip(t, blind(), "write-only: cannot tell what it holds")) return;
      const dir = folder("remove");
      const path = `${dir}/file${ext}`;
      await put(adapter(), path, Buffer.from("x"));
      await adapter().remove(path);
      await expectFerryError(adapter().stat(path), "NOT_FOUND", "removed file");
      await adapter().remove(path);
      await adapter().remove(`${dir}/nowhere/deeper${ext}`);
      const inner = `${dir}/full/file${ext}`;
      await put(adapter(), inner, Buffer.from("keep"));
      await expectFerryError(adapter().remove(`${dir}/full`), "NOT_EMPTY", "non-empty folder");
      await expectStored(inner, Buffer.from("keep"));
      await adapter().remove(inner);
      await adapter().remove(`${dir}/full`);
      await expectFerryError(adapter().stat(`${dir}/full`), "NOT_FOUND", "removed folder");
    });

    check("mkdir creates parents and is idempotent", async () => {
      const dir = folder("mkdir");
      await adapter().mkdir(`${dir}/x/y/z`);
      await adapter().mkdir(`${dir}/x/y/z`);
      await adapter().mkdir(`${dir}/x`);
      if (blind()) return;
      for (const path of [`${dir}/x`, `${dir}/x/y`, `${dir}/x/y/z`]) {
        assert.equal((await adapter().stat(path)).type, "dir", path);
      }
      if (!listable()) return;
      assert.deepEqual(await keysOf(`${dir}/x/y`), [key(`${dir}/x/y/z`)]);
      assert.deepEqual(await keysOf(`${dir}/x/y/z`), []);
    });

    check("a second instance sees what the first wrote, and the other way round", async () => {
      const dir = folder("persist");
      const first = randomBytes(500);
      await put(adapter(), `${dir}/first${ext}`, first);
      const other = await harness.open();
      opened.add(other);
      try {
        await expectStored(`${dir}/first${ext}`, first, other);
        const second = randomBytes(600);
        await put(other, `${dir}/second${ext}`, second);
        await expectStored(`${dir}/second${ext}`, second);
      } finally {
        opened.delete(other);
        await other.close();
      }
    });

    check("an aborted signal stops every call with ABORTED", async () => {
      const dir = folder("aborted");
      const path = `${dir}/file${ext}`;
      const a = adapter();
      await put(a, path, Buffer.from("there"));
      const signal = AbortSignal.abort(new FerryError("ABORTED", "test"));
      const other = `${dir}/other${ext}`;
      await expectFerryError(put(a, other, Buffer.from("no"), { signal }), "ABORTED", "write");
      await expectFerryError(a.stat(path, { signal }), "ABORTED", "stat");
      await expectFerryError(a.remove(path, { signal }), "ABORTED", "remove");
      await expectFerryError(a.mkdir(`${dir}/sub`, { signal }), "ABORTED", "mkdir");
      if (caps().read) await expectFerryError(a.read(path, { signal }), "ABORTED", "read");
      const opened = a.readWithEntry?.(path, { signal });
      if (opened) await expectFerryError(opened, "ABORTED", "readWithEntry");
      if (listable()) await expectFerryError(collect(a.list(dir, { signal })), "ABORTED", "list");
      await expectAbsent(other, "the aborted write left nothing");
      if (!blind())
        await expectFerryError(a.stat(`${dir}/sub`), "NOT_FOUND", "the aborted mkdir made nothing");
      await expectStored(path, Buffer.from("there"), a);
    });

    for (const replacing of [false, true]) {
      check(`an abort mid-write ${replacing ? "keeps the previous file" : "leaves no file"}`, async (t) => {
        if (skip(t, caps().partialWritesVisible, "partial writes are visible on this target")) return;
        const dir = folder(`abort-mid-${replacing ? "replace" : "new"}`);
        const path = `${dir}/file${ext}`;
        const old = randomBytes(100);
        if (replacing) await put(adapter(), path, old);
        const controller = new AbortController();
        const { source, consumed } = stallingSource(randomBytes(64 * 1024));
        const writing = adapter().write(path, source, { size: 256 * 1024, signal: controller.signal });
        const outcome = expectFerryError(writing, "ABORTED", "aborted write");
        await consumed;
        controller.abort();
        await outcome;
        if (replacing) await expectStored(path, old);
        else await expectNoFile(dir, path, "aborted write");
      });
    }

    /**
     * Starts an upload of `data`, lets the first half go, then pulls the plug (abort) and closes the
     * instance. Returns the last token the upload asked to keep and the bytes it said were stored.
     */
    const interruptedUpload = async (path: string, data: Buffer) => {
      const first = await harness.open();
      const upload = await openUpload(first, path, { size: data.length });
      assert.equal(upload.offset, 0, "a new upload starts at 0");
      let kept = { bytes: upload.offset, token: upload.token };
      const controller = new AbortController();
      const { source, consumed } = stallingSource(data.subarray(0, data.length / 2));
      const sending = upload.finish(source, {
        signal: controller.signal,
        onStored: (stored) => (kept = stored),
      });
      const outcome = expectFerryError(sending, "ABORTED", "interrupted upload");
      await consumed;
      // Give the target a moment to store what it received before the plug is pulled.
      for (let waited = 0; kept.bytes === 0 && waited < 1000; waited += 50) await delay(50);
      controller.abort();
      await outcome;
      await first.close();
      return kept;
    };
    /** Opens an upload on `a`, which must have openUpload (resumable targets only call this). */
    const openUpload = (a: StorageAdapter, path: string, options: UploadOptions) => {
      if (!a.openUpload) throw new Error(`${a.kind} claims resumable uploads but has no openUpload`);
      return a.openUpload(path, options);
    };
    const resumeSize = harness.resumeSize ?? largeSize;

    check("an interrupted upload resumes in a new instance from what the target holds", async (t) => {
      if (skip(t, caps().resumableWrite === "none", "uploads cannot resume here")) return;
      const dir = folder("resume");
      const path = `${dir}/file${ext}`;
      const old = randomBytes(100);
      await put(adapter(), path, old);
      const data = randomBytes(resumeSize);
      const kept = await interruptedUpload(path, data);
      await expectStored(path, old);

      const second = await harness.open();
      opened.add(second);
      const upload = await openUpload(second, path, { size: data.length, resume: kept.token });
      if (harness.restartsUploads === undefined) {
        assert.ok(upload.offset > 0, "resumes past the start");
        assert.ok(
          upload.offset >= kept.bytes,
          `resumes at ${upload.offset}, at or past ${kept.bytes} stored`,
        );
      } else {
        assert.equal(upload.offset, 0, `starts over: ${harness.restartsUploads}`);
      }
      assert.ok(upload.offset <= data.length / 2, `resumes at ${upload.offset}, within what was sent`);
      const entry = await upload.finish(sourceOf(data.subarray(upload.offset)));
      if (entry.size !== undefined) assert.equal(entry.size, data.length, "finish returns the size");
      await expectStored(path, data, second);
      if (listable()) assert.deepEqual(await keysOf(dir), [key(path)], "no partial upload left beside it");
    });

    check("a token that no longer fits starts the upload over", async (t) => {
      if (skip(t, caps().resumableWrite === "none", "uploads cannot resume here")) return;
      const dir = folder("resume-stale");
      const path = `${dir}/file${ext}`;
      const kept = await interruptedUpload(path, randomBytes(resumeSize));
      const data = randomBytes(1000);
      const upload = await openUpload(adapter(), path, {
        size: data.length,
        resume: kept.token,
      });
      assert.equal(upload.offset, 0, "another size: from the start");
      await upload.finish(sourceOf(data));
      await expectStored(path, data);
      const again = await openUpload(adapter(), path, {
        size: data.length,
        resume: kept.token,
      });
      assert.equal(again.offset, 0, "the finished upload's token does not resume");
      await again.abort();
      await expectStored(path, data);
    });

    check("abort throws an unfinished upload away", async (t) => {
      if (skip(t, caps().resumableWrite === "none", "uploads cannot resume here")) return;
      const dir = folder("resume-abort");
      const path = `${dir}/file${ext}`;
      const data = randomBytes(resumeSize);
      const kept = await interruptedUpload(path, data);
      const upload = await openUpload(adapter(), path, {
        size: data.length,
        resume: kept.token,
      });
      await upload.abort();
      await expectNoFile(dir, path, "aborted upload");
      const after = await openUpload(adapter(), path, {
        size: data.length,
        resume: kept.token,
      });
      assert.equal(after.offset, 0, "nothing left to resume after abort");
      await after.abort();
    });

    check("maxConcurrency parallel writes all land intact", async () => {
      const dir = folder("parallel");
      const count = Math.min(caps().maxConcurrency, 16);
      const files = Array.from({ length: count }, (_, i) => ({
        path: `${dir}/f${i}${ext}`,
        data: randomBytes(32 * 1024),
      }));
      await Promise.all(files.map((f) => put(adapter(), f.path, f.data)));
      for (const f of files) await expectStored(f.path, f.data);
      if (listable()) assert.equal((await keysOf(dir)).length, count);
    });
  });
}
