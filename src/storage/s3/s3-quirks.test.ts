/**
 * What is particular to S3 (against a real Ceph RGW): multipart uploads that resume after the
 * gateway went down, orphaned uploads, folder markers, times in metadata, ETag digests, and the
 * errors of wrong keys, a missing bucket, a full quota and a key too long.
 */
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { isFerryError } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import type { StorageAdapter, UploadToken } from "../adapter.ts";
import {
  collect,
  expectFerryError,
  put,
  readAll,
  sourceOf,
  stallingSource,
  rejectsWith,
} from "../../../test/conformance/storage-helpers.ts";
import { startCephRgw, type CephRgw } from "../../../test/servers/ceph-rgw.ts";
import { testOptions, Unavailable } from "../../../test/servers/common.ts";
import { s3Adapter, s3OptionsSchema } from "./s3.ts";
import { gatedSource, partCounter } from "./test-support.ts";

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BUCKET = "quirks";

const server: CephRgw | string = await startCephRgw().catch((error: unknown) => {
  if (error instanceof Unavailable) return error.message;
  throw error;
});
const skip = testOptions(typeof server === "string" ? server : undefined);
const rgw = () => {
  if (typeof server === "string") throw new Error(server);
  return server;
};

const opened: StorageAdapter[] = [];
/** An adapter on the quirks bucket (or `extra`'s), through `endpoint` when given (the counting proxy). */
function open(extra: Record<string, unknown> = {}, endpoint = rgw().endpoint): StorageAdapter {
  const adapter = s3Adapter.create(
    s3OptionsSchema.parse({
      endpoint,
      bucket: BUCKET,
      access_key_id: rgw().accessKeyId,
      secret_access_key: rgw().secretAccessKey,
      force_path_style: true,
      part_size: PART,
      ...extra,
    }),
    { name: "rgw-quirks", logger: silentLogger, baseDir: "/" },
  );
  opened.push(adapter);
  return adapter;
}

let raw: S3Client | undefined;
const s3raw = () => {
  assert.ok(raw, "no server");
  return raw;
};
before(async () => {
  if (typeof server === "string") return;
  await server.createBucket(BUCKET);
  raw = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
});
after(async () => {
  for (const adapter of opened) await adapter.close();
  raw?.destroy();
  if (typeof server !== "string") await server.close();
});

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Incomplete uploads of a key, as the server lists them. */
async function uploadsOf(key: string): Promise<string[]> {
  const page = await s3raw().send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: key }));
  return (page.Uploads ?? []).filter((u) => u.Key === key).map((u) => u.UploadId ?? "");
}

describe("s3 quirks (Ceph RGW)", () => {
  test("a wrong secret or access key is AUTH, naming the device", skip, async () => {
    const wrongSecret = open({ secret_access_key: "not-the-secret" });
    const listing = await rejectsWith(collect(wrongSecret.list("")), "AUTH", /rgw-quirks/);
    assert.equal(listing.retryable, false);
    await rejectsWith(
      put(wrongSecret, "denied.gcode", Buffer.from("x")),
      "AUTH",
      /rgw-quirks: upload denied\.gcode/,
    );
    await rejectsWith(wrongSecret.stat("denied.gcode"), "AUTH", /rgw-quirks/);
    const wrongKey = open({ access_key_id: "NOSUCHKEY" });
    await rejectsWith(collect(wrongKey.list("")), "AUTH", /InvalidAccessKeyId/);
  });

  test("a missing bucket is NOT_FOUND naming the bucket, not a missing file", skip, async () => {
    const nowhere = open({ bucket: "no-such-bucket" });
    const listed = await rejectsWith(
      collect(nowhere.list("")),
      "NOT_FOUND",
      /bucket "no-such-bucket" does not exist/,
    );
    assert.equal(listed.subject, "no-such-bucket");
    await rejectsWith(put(nowhere, "a.gcode", Buffer.from("x")), "NOT_FOUND", /bucket "no-such-bucket"/);
    await rejectsWith(nowhere.stat("a.gcode"), "NOT_FOUND", /bucket "no-such-bucket"/);
  });

  test("a key the server refuses (over 1024 bytes) is NAME_INVALID naming the path", skip, async () => {
    const s3 = open();
    // Every name is short; the key is not: the server, not a check of Ferry's, says no.
    const deep = `${Array.from({ length: 40 }, (_, i) => `folder-${String(i).padStart(2, "0")}-abcdefghijklmnop`).join("/")}/f.gcode`;
    assert.ok(Buffer.byteLength(deep) > 1024);
    const error = await rejectsWith(put(s3, deep, Buffer.from("x")), "NAME_INVALID", /InvalidObjectName/);
    assert.ok(error.message.includes(deep), "the message names the path");
    assert.equal(error.subject, deep);
    await rejectsWith(s3.write(deep, sourceOf(randomBytes(6 * MiB)), { size: 6 * MiB }), "NAME_INVALID");
  });

  test("a full quota is NO_SPACE, for one PUT and for a multipart upload", skip, async () => {
    await rgw().createBucket("quota");
    await rgw().setQuota({ bucket: "quota" }, MiB);
    const s3 = open({ bucket: "quota" });
    await put(s3, "small.gcode", randomBytes(1000));
    await rejectsWith(
      put(s3, "big.gcode", randomBytes(2 * MiB)),
      "NO_SPACE",
      /rgw-quirks: upload big\.gcode.*QuotaExceeded/,
    );
    await rejectsWith(put(s3, "huge.gcode", randomBytes(11 * MiB)), "NO_SPACE", /QuotaExceeded/);
    assert.deepEqual(
      (await collect(s3.list(""))).map((e) => e.path),
      ["small.gcode"],
    );
  });

  test(
    "radosgw stopped mid-upload: UNAVAILABLE or TRANSIENT, then a new instance resumes with ListParts",
    skip,
    async () => {
      const path = "outage/big.gcode";
      const data = randomBytes(6 * PART + 12345);
      const first = open({ upload_concurrency: 2 });
      const upload = await first.openUpload?.(path, { size: data.length, modTime: Date.UTC(2024, 4, 5) });
      assert.ok(upload);
      assert.equal(upload.offset, 0);
      let kept: { bytes: number; token: UploadToken } = { bytes: 0, token: upload.token };
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let stored: () => void = () => undefined;
      const twoParts = new Promise<void>((resolve) => (stored = resolve));
      const sending = upload.finish(gatedSource(data, 3 * PART, gate), {
        onStored: (state) => {
          kept = state;
          if (state.bytes >= 2 * PART) stored();
        },
      });
      sending.catch(() => undefined);
      try {
        await twoParts;
        await rgw().stop();
        // A new connection finds nobody there: UNAVAILABLE, naming the device.
        const refused = await rejectsWith(
          collect(open().list("")),
          "UNAVAILABLE",
          /rgw-quirks: list \/: server unreachable \(ECONNREFUSED\)/,
        );
        assert.equal(refused.retryable, true);
        release();
        const error: unknown = await sending.then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(isFerryError(error), `expected a FerryError, got ${String(error)}`);
        assert.ok(["UNAVAILABLE", "TRANSIENT"].includes(error.code), `${error.code}: ${error.message}`);
        assert.equal(error.retryable, true);
        assert.match(error.message, /rgw-quirks/);
      } finally {
        release();
        await rgw().start();
      }
      await first.close();

      const counter = await partCounter(rgw().port);
      try {
        const second = open({}, counter.endpoint);
        const resumed = await second.openUpload?.(path, {
          size: data.length,
          modTime: Date.UTC(2024, 4, 5),
          resume: kept.token,
        });
        assert.ok(resumed);
        assert.ok(resumed.offset > 0, "resumes past the start");
        assert.ok(
          resumed.offset >= kept.bytes,
          `resumes at ${resumed.offset}, at or past the ${kept.bytes} reported stored`,
        );
        assert.equal(resumed.offset % PART, 0, "at a part boundary");
        const entry = await resumed.finish(sourceOf(data.subarray(resumed.offset)));
        assert.equal(entry.size, data.length);
        const firstSent = resumed.offset / PART + 1;
        assert.deepEqual(
          [...counter.parts].sort((a, b) => a - b),
          Array.from({ length: 7 - firstSent + 1 }, (_, i) => firstSent + i),
          "only the missing parts were sent",
        );
        assert.equal(counter.bytes(), data.length - resumed.offset, "only the missing bytes were sent");
        assert.equal(sha256(await readAll(second, path)), sha256(data));
        assert.deepEqual(await uploadsOf(path), [], "the upload is complete, none left open");
      } finally {
        await counter.close();
      }
    },
  );

  test("a resume skips parts past a gap that the server holds, and sends the gap", skip, async () => {
    const path = "gap/file.gcode";
    const data = randomBytes(5 * PART);
    const s3 = open();
    const upload = await s3.openUpload?.(path, { size: data.length });
    assert.ok(upload);
    const { uploadId, key } = upload.token as { uploadId: string; key: string };
    for (const part of [1, 2, 4]) {
      const body = data.subarray((part - 1) * PART, part * PART);
      await s3raw().send(
        new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: part, Body: body }),
      );
    }
    const counter = await partCounter(rgw().port);
    try {
      const resumed = await open({}, counter.endpoint).openUpload?.(path, {
        size: data.length,
        resume: upload.token,
      });
      assert.ok(resumed);
      assert.equal(resumed.offset, 2 * PART, "the unbroken run of parts from part 1");
      const reports: number[] = [];
      await resumed.finish(sourceOf(data.subarray(resumed.offset)), {
        onStored: (s) => reports.push(s.bytes),
      });
      assert.deepEqual([...counter.parts].sort(), [3, 5], "part 4 was already there");
      assert.equal(reports.at(-1), data.length);
      assert.equal(sha256(await readAll(s3, path)), sha256(data));
    } finally {
      await counter.close();
    }
  });

  test("a resume after a lost Complete answer finds the finished file and sends nothing", skip, async () => {
    const path = "lost-answer/file.gcode";
    const data = randomBytes(2 * PART + 1);
    const s3 = open();
    const upload = await s3.openUpload?.(path, { size: data.length });
    assert.ok(upload);
    await upload.finish(sourceOf(data));
    const again = await open().openUpload?.(path, { size: data.length, resume: upload.token });
    assert.ok(again);
    assert.equal(again.offset, data.length, "the whole file is there");
    assert.equal((await again.finish(sourceOf(Buffer.alloc(0)))).size, data.length);
    assert.equal(sha256(await readAll(s3, path)), sha256(data));
  });

  test("orphaned uploads: a fresh start, remove and abort take them away", skip, async () => {
    const s3 = open();
    const path = "orphans/file.gcode";
    const key = path;
    const size = 3 * PART;
    const orphan = await s3.openUpload?.(path, { size });
    assert.ok(orphan);
    assert.equal((await uploadsOf(key)).length, 1);
    const fresh = await open().openUpload?.(path, { size });
    assert.ok(fresh);
    assert.deepEqual(
      await uploadsOf(key),
      [(fresh.token as { uploadId: string }).uploadId],
      "the older one was aborted",
    );
    await s3.remove(path);
    assert.deepEqual(await uploadsOf(key), [], "remove aborted it");
    const stale = await s3.openUpload?.(path, { size });
    assert.ok(stale);
    const other = await s3.openUpload?.(path, { size: 1000, resume: stale.token });
    assert.equal(other?.offset, 0);
    assert.deepEqual(await uploadsOf(key), [], "a token for another size throws its partial away");
    const aborted = await s3.openUpload?.(path, { size });
    await aborted?.abort();
    assert.deepEqual(await uploadsOf(key), []);
    await aborted?.abort(); // twice is fine
  });

  test(
    "an upload started by a killed attempt (its token never kept) is aborted once the key is whole",
    skip,
    async () => {
      const s3 = open();
      const path = "orphans/killed.gcode";
      const data = randomBytes(2 * PART + 10);
      const upload = await s3.openUpload?.(path, { size: data.length });
      assert.ok(upload);
      // Another attempt created an upload of the key and died before it could keep the token.
      await s3raw().send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: path }));
      assert.equal((await uploadsOf(path)).length, 2);
      await upload.finish(sourceOf(data));
      assert.deepEqual(await uploadsOf(path), [], "no orphan outlives the completed object");
      assert.equal(sha256(await readAll(s3, path)), sha256(data));
    },
  );

  test(
    "times live in x-amz-meta-mtime: stat shows them, listings do not; others' objects show LastModified",
    skip,
    async () => {
      const s3 = open();
      const modTime = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
      await put(s3, "times/ferry.gcode", Buffer.from("f"), { modTime });
      const head = await s3raw().send(new HeadObjectCommand({ Bucket: BUCKET, Key: "times/ferry.gcode" }));
      assert.equal(head.Metadata?.mtime, "1704164645.678", "rclone's format: seconds with a fraction");
      assert.equal((await s3.stat("times/ferry.gcode")).modTime, modTime);
      const listed = await collect(s3.list("times"));
      assert.equal(listed[0]?.modTime, undefined, "a listing has no metadata to show");
      await s3raw().send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "times/rclone.gcode",
          Body: "r",
          Metadata: { mtime: "1704164645.678123456" },
        }),
      );
      assert.equal((await s3.stat("times/rclone.gcode")).modTime, modTime, "rclone's nanoseconds are read");
      const before = Date.now() - 5000;
      await s3raw().send(new PutObjectCommand({ Bucket: BUCKET, Key: "times/plain.gcode", Body: "p" }));
      const plain = (await s3.stat("times/plain.gcode")).modTime ?? 0;
      assert.ok(plain >= before && plain <= Date.now() + 5000, "the server's own time");
      const wanted = Date.UTC(2020, 5, 6, 7, 8, 9, 10);
      await s3.setModTime?.("times/plain.gcode", wanted);
      assert.equal((await s3.stat("times/plain.gcode")).modTime, wanted);
      assert.equal((await readAll(s3, "times/plain.gcode")).toString(), "p");
    },
  );

  test("md5 comes from the ETag of one-PUT objects and is computed for multipart ones", skip, async () => {
    const s3 = open();
    const small = randomBytes(1000);
    const large = randomBytes(2 * PART + 7);
    const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");
    assert.equal((await put(s3, "md5/small.gcode", small)).hashes?.md5, md5(small));
    const written = await put(s3, "md5/large.gcode", large);
    assert.equal(written.hashes, undefined, "a multipart ETag is no MD5");
    const listed = new Map((await collect(s3.list("md5"))).map((e) => [e.path, e]));
    assert.equal(listed.get("md5/small.gcode")?.hashes?.md5, md5(small));
    assert.equal(listed.get("md5/large.gcode")?.hashes, undefined);
    assert.equal(await s3.hash?.("md5/small.gcode", "md5"), md5(small));
    assert.equal(await s3.hash?.("md5/large.gcode", "md5"), md5(large));
    await rejectsWith(s3.hash?.("md5/small.gcode", "sha256") ?? Promise.resolve(), "UNSUPPORTED");
  });

  test("folders: markers from mkdir, prefixes of files, removal of the last marker", skip, async () => {
    const s3 = open();
    await s3.mkdir("dirs/a/b");
    for (const key of ["dirs/", "dirs/a/", "dirs/a/b/"]) {
      const head = await s3raw().send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.equal(head.ContentLength, 0, key);
    }
    await s3.remove("dirs/a/b");
    assert.equal((await s3.stat("dirs/a")).type, "dir", "the parent keeps its own marker");
    // A folder only implied by a key (written by another tool): a folder while the file is there.
    await s3raw().send(new PutObjectCommand({ Bucket: BUCKET, Key: "implied/x/file.gcode", Body: "i" }));
    assert.equal((await s3.stat("implied/x")).type, "dir");
    await rejectsWith(s3.remove("implied"), "NOT_EMPTY", /implied/);
    await s3.remove("implied/x/file.gcode");
    await rejectsWith(s3.stat("implied"), "NOT_FOUND");
    await rejectsWith(collect(s3.list("implied")), "NOT_FOUND");
    // Keys Ferry cannot address are left out rather than mangled.
    await s3raw().send(new PutObjectCommand({ Bucket: BUCKET, Key: "odd/a//b.gcode", Body: "o" }));
    await s3raw().send(new PutObjectCommand({ Bucket: BUCKET, Key: "odd/fine.gcode", Body: "o" }));
    assert.deepEqual(
      (await collect(s3.list("odd", { recursive: true }))).map((e) => e.path),
      ["odd/fine.gcode"],
    );
  });

  test("recursive listings announce each folder once, before its contents", skip, async () => {
    const s3 = open({ root: "tree" });
    for (const path of ["a/1.gcode", "a/b/2.gcode", "a-b/3.gcode", "a/c/4.gcode", "z.gcode"]) {
      await put(s3, path, Buffer.from(path));
    }
    await s3.mkdir("a/empty");
    const all = await collect(s3.list("", { recursive: true }));
    assert.deepEqual(
      all.map((e) => `${e.type}:${e.path}`),
      [
        "dir:a-b",
        "file:a-b/3.gcode",
        "dir:a",
        "file:a/1.gcode",
        "dir:a/b",
        "file:a/b/2.gcode",
        "dir:a/c",
        "file:a/c/4.gcode",
        "dir:a/empty",
        "file:z.gcode",
      ],
    );
  });

  test("a name another tool stored in NFD is found, read and removed by its NFC form", skip, async () => {
    const s3 = open();
    const nfc = "nfd/Café ёжик.gcode".normalize("NFC");
    await s3raw().send(new PutObjectCommand({ Bucket: BUCKET, Key: nfc.normalize("NFD"), Body: "mac" }));
    assert.equal((await s3.stat(nfc)).size, 3);
    assert.equal((await readAll(s3, nfc)).toString(), "mac");
    await s3.remove(nfc);
    await rejectsWith(s3.stat(nfc.normalize("NFD")), "NOT_FOUND");
  });

  test(
    "virtual-host style is not forced: an IP endpoint still reaches the bucket by path",
    skip,
    async () => {
      const s3 = open({ force_path_style: false });
      await put(s3, "style.gcode", Buffer.from("s"));
      assert.equal((await s3.stat("style.gcode")).size, 1);
    },
  );
  test(
    "files between 1 MiB and the threshold stream in one PUT; a wrong size or an abort leaves the old file",
    skip,
    async () => {
      const s3 = open();
      const path = "streamed/file.gcode";
      const data = randomBytes(3 * MiB);
      await put(s3, path, data);
      assert.equal(sha256(await readAll(s3, path)), sha256(data));
      for (const given of [3 * MiB - 1, 3 * MiB + 1]) {
        await expectFerryError(
          put(s3, path, randomBytes(given), { size: 3 * MiB }),
          "PROTOCOL",
          `${given} bytes`,
        );
      }
      const controller = new AbortController();
      const { source, consumed } = stallingSource(randomBytes(2 * MiB));
      const writing = s3.write(path, source, { size: 3 * MiB, signal: controller.signal });
      const outcome = expectFerryError(writing, "ABORTED", "aborted mid-stream");
      await consumed;
      controller.abort();
      await outcome;
      assert.equal(sha256(await readAll(s3, path)), sha256(data), "the old content is there");
      assert.deepEqual(
        (await collect(s3.list("streamed"))).map((e) => e.path),
        [path],
      );
    },
  );

  test(
    "parts in flight are bounded per device (2 x upload_concurrency), however many files go",
    skip,
    async () => {
      const counter = await partCounter(rgw().port);
      try {
        const s3 = open({ upload_concurrency: 2 }, counter.endpoint);
        const files = Array.from({ length: 4 }, (_, i) => ({
          path: `budget/f${i}.gcode`,
          data: randomBytes(4 * PART),
        }));
        await Promise.all(files.map((f) => put(s3, f.path, f.data)));
        assert.equal(counter.parts.length, 16);
        assert.ok(counter.peak() <= 4, `${counter.peak()} parts at once`);
        assert.ok(counter.peak() >= 2, "parts do go in parallel");
        for (const f of files) assert.equal(sha256(await readAll(s3, f.path)), sha256(f.data));
      } finally {
        await counter.close();
      }
    },
  );
});
