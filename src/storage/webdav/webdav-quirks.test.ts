/**
 * What is particular to WebDAV servers, against real Apache mod_dav and nginx dav: authentication
 * (wrong passwords, schemes, stale Digest nonces, TLS), ranged-PUT detection, servers stopped in the
 * middle of an upload, full disks, refused names, and the requests a write costs.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { after, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { collect, readAll, sourceOf } from "../../../test/conformance/storage-helpers.ts";
import { testOptions, Unavailable } from "../../../test/servers/common.ts";
import { startApacheDav, startNginxDav, type DavServer } from "../../../test/servers/webdav.ts";
import { FerryError, isFerryError, type ErrorCode } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { Secret } from "../../core/secret.ts";
import { parseConfig } from "../../config/index.ts";
import {
  openWebdavStorage,
  webdavAdapter,
  webdavOptionsSchema,
  type WebdavOptions,
  type WebdavTuning,
} from "./webdav.ts";

const DEVICE = "dav-quirks";
const CHUNK = 256 * 1024;

interface Started {
  server?: DavServer;
  reason?: string;
  /** `test()` options: skipped with the reason when the server cannot run here. */
  options: { skip?: string };
}

async function attempt(start: () => Promise<DavServer>): Promise<Started> {
  try {
    return { server: await start(), options: {} };
  } catch (error) {
    if (!(error instanceof Unavailable)) throw error;
    return { reason: error.message, options: testOptions(error.message) };
  }
}

const apache = await attempt(() => startApacheDav());
const digest = await attempt(() => startApacheDav({ auth: "digest" }));
const nginx = await attempt(() => startNginxDav());
after(async () => {
  for (const started of [apache, digest, nginx]) await started.server?.close();
});

function need(started: Started): DavServer {
  if (!started.server) throw new Error(started.reason ?? "the server did not start");
  return started.server;
}

interface Open {
  auth?: "auto" | "basic" | "digest";
  password?: string;
  caFile?: string;
}

function open(server: DavServer, options: Open = {}, tuning: WebdavTuning = {}) {
  return openWebdavStorage(
    {
      url: server.url,
      username: server.username,
      password: new Secret(options.password ?? server.password),
      auth: options.auth ?? "auto",
      ...(options.caFile === undefined ? {} : { ca_file: basename(options.caFile) }),
    },
    {
      name: DEVICE,
      logger: silentLogger,
      baseDir: options.caFile === undefined ? "/" : dirname(options.caFile),
    },
    tuning,
  );
}

async function rejects(action: Promise<unknown>, codes: ErrorCode[], what: string): Promise<FerryError> {
  const error = await action.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isFerryError(error), `${what}: expected a FerryError, got ${String(error)}`);
  assert.ok(codes.includes(error.code), `${what}: ${error.code} (${error.message})`);
  return error;
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const put = (a: ReturnType<typeof open>, path: string, data: Buffer) =>
  a.write(path, sourceOf(data), { size: data.length });

test(
  "a wrong password is AUTH naming the device, on every server and in every mode",
  apache.options,
  async () => {
    const cases: [DavServer, "auto" | "basic" | "digest"][] = [
      [need(apache), "auto"],
      [need(apache), "basic"],
      [need(digest), "auto"],
      [need(digest), "digest"],
    ];
    if (nginx.server) cases.push([nginx.server, "basic"]);
    for (const [server, auth] of cases) {
      const a = open(server, { auth, password: "not-the-password" });
      try {
        const what = `${server.server} ${server.auth}, auth ${auth}`;
        for (const [op, action] of [
          ["stat", () => a.stat("")],
          ["write", () => put(a, "denied.bin", Buffer.from("x"))],
        ] as const) {
          const error = await rejects(action(), ["AUTH"], `${what}: ${op}`);
          assert.equal(error.retryable, false, `${what}: ${op} is not retryable`);
          assert.match(
            error.message,
            new RegExp(`^${DEVICE}: (stat /|upload denied.bin): `),
            `${what}: ${op} names device and path`,
          );
          assert.doesNotMatch(error.message, /not-the-password/, `${what}: no password in messages`);
        }
      } finally {
        await a.close();
      }
    }
    const dav = open(need(apache));
    await rejects(dav.stat("denied.bin"), ["NOT_FOUND"], "nothing was stored");
    await dav.close();
  },
);

test("an auth mode refuses a scheme the server does not offer", apache.options, async () => {
  const basicOnDigest = open(need(digest), { auth: "basic" });
  const digestOnBasic = open(need(apache), { auth: "digest" });
  try {
    assert.match((await rejects(basicOnDigest.stat(""), ["AUTH"], "basic")).message, /offers digest/);
    assert.match((await rejects(digestOnBasic.stat(""), ["AUTH"], "digest")).message, /offers basic/);
  } finally {
    await basicOnDigest.close();
    await digestOnBasic.close();
  }
});

test("auth: auto sends no password before the server asks, then the scheme it asked for", async () => {
  const seen: (string | undefined)[] = [];
  const fake = createServer((req, res) => {
    seen.push(req.headers.authorization);
    req.resume();
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="fake"' }).end();
      return;
    }
    res.writeHead(207, { "Content-Type": "application/xml" });
    res.end(
      '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/dav/</D:href>' +
        "<D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop>" +
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>",
    );
  });
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  const port = (fake.address() as AddressInfo).port;
  const a = openWebdavStorage(
    { url: `http://127.0.0.1:${port}/dav/`, username: "u", password: new Secret("p"), auth: "auto" },
    { name: DEVICE, logger: silentLogger, baseDir: "/" },
  );
  try {
    assert.equal((await a.stat("")).type, "dir");
    assert.equal((await a.stat("")).type, "dir");
    const basic = `Basic ${Buffer.from("u:p").toString("base64")}`;
    assert.deepEqual(seen, [undefined, basic, basic], "challenged once, then Basic from the start");
  } finally {
    await a.close();
    await new Promise((resolve) => fake.close(resolve));
  }
});

test("stale Digest nonces are renewed; an upload refused as stale is TRANSIENT", apache.options, async () => {
  const server = await startApacheDav({ auth: "digest", nonceLifetimeS: 1 });
  const a = open(server);
  const careless = open(server, {}, { nonceRefreshMs: 3_600_000 });
  try {
    await put(a, "a.bin", Buffer.from("one"));
    // The nonce dies after a second on this server (Apache's default is five minutes).
    await delay(1_100);
    assert.equal((await a.stat("a.bin")).size, 3, "a bodiless request answers the stale challenge");
    await delay(1_100);
    const before = (await server.requests()).length;
    await put(a, "b.bin", Buffer.from("two"));
    // The fresh-nonce handshake (PROPFIND 401, 207), then the PUT.
    const upload = (
      await server.requests({ since: before, until: (r) => r.some((x) => x.method === "PUT") })
    ).filter((r) => r.method === "PUT");
    assert.deepEqual(
      upload.map((r) => r.status),
      [201],
      "having seen a nonce go stale, the adapter renews it before an upload",
    );

    await careless.stat("a.bin");
    await delay(1_100);
    const stale = await rejects(put(careless, "c.bin", Buffer.from("three")), ["TRANSIENT"], "stale upload");
    assert.ok(stale.retryable);
    assert.match(stale.message, new RegExp(`^${DEVICE}: upload c.bin`));
    await put(careless, "c.bin", Buffer.from("three"));
    assert.equal((await a.stat("c.bin")).size, 5, "the next attempt goes through");
  } finally {
    await a.close();
    await careless.close();
    await server.close();
  }
});

test(
  "ranged PUT is detected on Apache, not on nginx, and the probe leaves nothing",
  apache.options,
  async () => {
    const cases: [DavServer, boolean][] = [[need(apache), true]];
    if (nginx.server) cases.push([nginx.server, false]);
    for (const [server, expected] of cases) {
      const a = open(server);
      try {
        await a.mkdir("probe");
        assert.equal(await a.detectRangedPut({ folder: "probe" }), expected, server.server);
        assert.deepEqual(
          await readdir(join(server.dataDir, "probe")),
          [],
          `${server.server}: scratch file removed`,
        );
      } finally {
        await a.close();
      }
    }
  },
);

test("a partial upload is hidden from listings and keeps its folder", apache.options, async () => {
  const server = need(apache);
  const a = open(server, {}, { chunkBytes: CHUNK });
  try {
    const data = randomBytes(3 * CHUNK);
    const upload = await a.openUpload("partial/file.bin", { size: data.length });
    let stored = 0;
    const controller = new AbortController();
    async function* firstChunkOnly() {
      yield data.subarray(0, CHUNK);
      while (stored === 0) await delay(10);
      controller.abort();
    }
    await rejects(
      upload.finish(Readable.from(firstChunkOnly()), {
        signal: controller.signal,
        onStored: (s) => (stored = s.bytes),
      }),
      ["ABORTED"],
      "paused upload",
    );
    assert.equal(stored, CHUNK);
    assert.deepEqual(await collect(a.list("partial")), [], "the partial file is not listed");
    assert.equal((await readdir(join(server.dataDir, "partial"))).length, 1, "but it is on the server");
    await rejects(a.remove("partial"), ["NOT_EMPTY"], "a live partial keeps its folder");
    await upload.abort();
    await a.remove("partial");
  } finally {
    await a.close();
  }
});

/** Sends `data` through `finish` and stops the server once `stopAt` holds; the source waits for it. */
async function uploadThroughOutage(
  server: DavServer,
  tuning: WebdavTuning,
  data: Buffer,
  stopAt: (sent: number, stored: number) => boolean,
) {
  const first = open(server, {}, tuning);
  const upload = await first.openUpload("outage/file.bin", { size: data.length });
  assert.equal(upload.offset, 0);
  let kept = { bytes: upload.offset, token: upload.token };
  let stopping: Promise<void> | undefined;
  async function* source() {
    for (let at = 0; at < data.length; at += 64 * 1024) {
      if (stopping === undefined && stopAt(at, kept.bytes)) stopping = server.stop();
      // Nothing more goes once the server is being stopped: the outage hits mid-upload.
      if (stopping) await stopping;
      yield data.subarray(at, at + 64 * 1024);
    }
  }
  const failure = await rejects(
    upload.finish(Readable.from(source()), { onStored: (s) => (kept = s) }),
    ["UNAVAILABLE", "TRANSIENT"],
    `${server.server} stopped mid-upload`,
  );
  assert.ok(failure.retryable, "an outage is retryable");
  assert.match(failure.message, new RegExp(`^${DEVICE}: `));
  await first.close();
  await server.start();
  return kept;
}

test(
  "Apache stopped mid-upload: a new instance resumes from what the server holds",
  apache.options,
  async () => {
    const server = await startApacheDav();
    try {
      const data = randomBytes(12 * CHUNK);
      const kept = await uploadThroughOutage(
        server,
        { chunkBytes: CHUNK },
        data,
        (_sent, stored) => stored >= 3 * CHUNK,
      );
      assert.ok(kept.bytes >= 3 * CHUNK && kept.bytes < data.length, `stored ${kept.bytes}`);
      const before = (await server.requests()).length;
      const second = open(server, {}, { chunkBytes: CHUNK });
      try {
        const upload = await second.openUpload("outage/file.bin", { size: data.length, resume: kept.token });
        assert.ok(
          upload.offset > 0 && upload.offset >= kept.bytes,
          `resumes at ${upload.offset} ≥ ${kept.bytes}`,
        );
        const entry = await upload.finish(sourceOf(data.subarray(upload.offset)));
        assert.equal(entry.size, data.length);
        const temp = `/dav/${String(kept.token.temp)}`;
        const logged = await server.requests({
          since: before,
          until: (r) => r.some((x) => x.method === "MOVE"),
        });
        const puts = logged.filter((r) => r.method === "PUT" && r.path === temp);
        const sent = puts.reduce((sum, r) => sum + (r.length ?? 0), 0);
        assert.equal(sent, data.length - upload.offset, "only the rest is sent");
        assert.equal(
          puts[0]?.range,
          `bytes ${upload.offset}-${Math.min(data.length, upload.offset + CHUNK) - 1}/*`,
        );
        assert.equal(sha256(await readAll(second, "outage/file.bin")), sha256(data));
        assert.deepEqual(await readdir(join(server.dataDir, "outage")), ["file.bin"], "no partial file left");
      } finally {
        await second.close();
      }
    } finally {
      await server.close();
    }
  },
);

test("nginx stopped mid-upload: the upload starts over and ends right", nginx.options, async () => {
  const server = await startNginxDav();
  try {
    const data = randomBytes(12 * CHUNK);
    const kept = await uploadThroughOutage(server, { chunkBytes: CHUNK }, data, (sent) => sent >= 4 * CHUNK);
    assert.equal(kept.bytes, 0, "one PUT: nothing is stored before it ends");
    const second = open(server, {}, { chunkBytes: CHUNK });
    try {
      const upload = await second.openUpload("outage/file.bin", { size: data.length, resume: kept.token });
      assert.equal(upload.offset, 0, "nginx cannot resume: from the start");
      await upload.finish(sourceOf(data));
      assert.equal(sha256(await readAll(second, "outage/file.bin")), sha256(data));
      assert.deepEqual(await readdir(join(server.dataDir, "outage")), ["file.bin"], "nothing else left");
    } finally {
      await second.close();
    }
  } finally {
    await server.close();
  }
});

test(
  "a full disk: Apache answers 507 (NO_SPACE), nginx 500 (TRANSIENT); old files stay",
  apache.options,
  async () => {
    const servers: [() => Promise<DavServer>, ErrorCode, RegExp][] = [
      [() => startApacheDav({ diskBytes: 1024 * 1024 }), "NO_SPACE", /HTTP 507/],
    ];
    if (nginx.server)
      servers.push([() => startNginxDav({ diskBytes: 1024 * 1024 }), "TRANSIENT", /HTTP 500/]);
    for (const [start, code, status] of servers) {
      const server = await start();
      const a = open(server, {}, { chunkBytes: CHUNK });
      try {
        const old = randomBytes(100 * 1024);
        await put(a, "full/old.bin", old);
        for (const path of ["full/new.bin", "full/old.bin"]) {
          const error = await rejects(
            put(a, path, randomBytes(2 * 1024 * 1024)),
            [code],
            `${server.server}: ${path}`,
          );
          assert.match(error.message, status);
          assert.match(error.message, new RegExp(`^${DEVICE}: upload ${path}`));
        }
        await rejects(a.stat("full/new.bin"), ["NOT_FOUND"], "nothing under the new name");
        assert.equal(sha256(await readAll(a, "full/old.bin")), sha256(old), "the old file keeps its content");
        const upload = await a.openUpload("full/resumable.bin", { size: 2 * 1024 * 1024 });
        await rejects(
          upload.finish(sourceOf(randomBytes(2 * 1024 * 1024))),
          [code],
          `${server.server}: chunked`,
        );
        await upload.abort();
      } finally {
        await a.close();
        await server.close();
      }
    }
  },
);

test(
  "a name too long for the server's disk is NAME_INVALID naming it (the server refused it)",
  apache.options,
  async () => {
    const long = "n".repeat(300);
    const cases: [DavServer, number][] = [[need(apache), 403]];
    if (nginx.server) cases.push([nginx.server, 500]);
    for (const [server, status] of cases) {
      const a = open(server);
      try {
        const before = (await server.requests()).length;
        const error = await rejects(
          put(a, `names/${long}.bin`, Buffer.from("x")),
          ["NAME_INVALID"],
          server.server,
        );
        assert.ok(error.message.includes(`"${long}.bin"`), `${server.server}: names the name`);
        const refused = (
          await server.requests({ since: before, until: (r) => r.some((x) => x.method === "PUT") })
        ).find((r) => r.method === "PUT");
        assert.equal(refused?.status, status, `${server.server} itself refused the name`);
        await rejects(a.mkdir(`names/${long}`), ["NAME_INVALID"], `${server.server}: mkdir`);
        await put(a, `names/${"n".repeat(251)}.bin`, Buffer.from("x"));
      } finally {
        await a.close();
      }
    }
  },
);

test("writes into a folder cost one request each once it is known", apache.options, async () => {
  const cases = [need(apache), ...(nginx.server ? [nginx.server] : [])];
  for (const server of cases) {
    const a = open(server);
    try {
      await put(a, "many/first.bin", Buffer.from("first"));
      const logged = await server.requests({ until: (r) => r.some((x) => x.path.endsWith("/first.bin")) });
      const before = logged.length;
      for (let i = 0; i < 10; i++) await put(a, `many/f${i}.bin`, randomBytes(4096));
      const requests = await server.requests({ since: before, until: (r) => r.length >= 10 });
      assert.deepEqual(
        requests.map((r) => `${r.method} ${r.status}`),
        Array.from({ length: 10 }, () => "PUT 201"),
        server.server,
      );
    } finally {
      await a.close();
    }
  }
});

test(
  "a source longer than announced fails before the server has the whole body",
  apache.options,
  async () => {
    const a = open(need(apache));
    try {
      // The announced bytes come as one chunk, the extra one after it: the body must not complete.
      for (const [path, size] of [
        ["longer/exact.bin", 4096],
        ["longer/empty.bin", 0],
      ] as const) {
        const source = Readable.from([randomBytes(size), Buffer.from("!")].filter((b) => b.length > 0));
        await rejects(a.write(path, source, { size }), ["PROTOCOL"], path);
        await rejects(a.stat(path), ["NOT_FOUND"], `${path}: nothing stored`);
      }
    } finally {
      await a.close();
    }
  },
);

test("https: ca_file makes the server's certificate trusted; without it, AUTH", apache.options, async () => {
  const server = await startApacheDav({ tls: true });
  try {
    const caFile = server.caFile ?? "";
    const trusting = open(server, { caFile });
    const doubting = open(server);
    try {
      await put(trusting, "tls/file.bin", Buffer.from("secure"));
      assert.equal((await readAll(trusting, "tls/file.bin")).toString(), "secure");
      const error = await rejects(doubting.stat(""), ["AUTH"], "untrusted certificate");
      assert.match(error.message, /ca_file/);
    } finally {
      await trusting.close();
      await doubting.close();
    }
  } finally {
    await server.close();
  }
});

test("options: the documented example parses, auth defaults to auto, mistakes are refused", () => {
  const config = parseConfig(
    'devices:\n  dav: { type: webdav, url: "http://127.0.0.1:8081/", username: sync, password: "${DAV_PASSWORD}" }\n',
    "/farm/ferry.yaml",
    {
      deviceKinds: [{ kind: webdavAdapter.kind, optionsSchema: webdavAdapter.optionsSchema }],
      env: { DAV_PASSWORD: "secret" },
    },
  );
  const parsed = config.devices.get("dav")?.options as WebdavOptions;
  assert.equal(parsed.auth, "auto");
  assert.equal(parsed.password?.reveal(), "secret");
  assert.equal(String(parsed.password), "[redacted]");
  for (const wrong of [
    { url: "http://x/", username: "sync" },
    { url: "http://x/", ca_file: "ca.pem" },
    { url: "ftp://x/" },
    { url: "http://x/", auth: "ntlm" },
    { url: "http://x/", root: "/upload" },
    { url: "http://sync:pw@x/dav/" },
  ]) {
    assert.equal(webdavOptionsSchema.safeParse(wrong).success, false, JSON.stringify(wrong));
  }
});
