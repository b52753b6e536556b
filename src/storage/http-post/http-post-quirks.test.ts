/** What is particular to posting files to a web form: answers, faults, names, fields, the wire. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { tlsCertificate, testOptions, Unavailable } from "../../../test/servers/common.ts";
import { type ErrorCode } from "../../core/errors.ts";
import { silentLogger } from "../../core/logger.ts";
import { UploadFormSim, type UploadFormSimOptions } from "../../sim/upload-form/index.ts";
import { httpPostAdapter, HttpPostStorage } from "./http-post.ts";
import { firstLine } from "./errors.ts";
import { MultipartBody } from "../../core/multipart.ts";
import { rejectsWith } from "../../../test/conformance/storage-helpers.ts";

const context = { name: "flight-review", logger: silentLogger, baseDir: "/" };

function open(options: Record<string, unknown>, baseDir = "/"): HttpPostStorage {
  return new HttpPostStorage(httpPostAdapter.optionsSchema.parse(options), { ...context, baseDir });
}

async function withSim(
  simOptions: UploadFormSimOptions,
  options: Record<string, unknown>,
  fn: (sim: UploadFormSim, storage: HttpPostStorage) => Promise<void>,
): Promise<void> {
  const sim = await UploadFormSim.start(simOptions);
  const storage = open({ url: sim.uploadUrl, file_field: "filearg", ...options });
  try {
    await fn(sim, storage);
  } finally {
    await storage.close();
    await sim.close();
  }
}

const put = (storage: HttpPostStorage, path: string, data: Buffer) =>
  storage.write(path, Readable.from([data]), { size: data.length });

/** A server of the test's own: counts body bytes and answers with `answer` once the body is in (or never). */
async function ownServer(answer: ((req: IncomingMessage, bytes: number) => [number, string]) | "never") {
  const seen = { bytes: 0 };
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      seen.bytes += chunk.length;
    });
    req.on("end", () => {
      if (answer === "never") return;
      const [status, location] = answer(req, bytes);
      res.writeHead(status, { Location: location, "Content-Length": 0 });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { url, seen, close };
}

void describe("answers", () => {
  for (const redirectStatus of [302, 303, 307] as const) {
    void test(`a ${redirectStatus} redirect is success, and it is not followed`, () =>
      // Following a 307 would post again to /plot_app, which the site refuses (404).
      withSim({ redirectStatus }, {}, async (sim, storage) => {
        const entry = await put(storage, "logs/a.ulg", Buffer.from("ULog"));
        assert.deepEqual(entry, { path: "logs/a.ulg", type: "file", size: 4 });
        assert.equal(sim.received().length, 1);
      }));
  }

  void test("success_pattern: a 200 page must match it; an error page on 200 is PROTOCOL, not retried", () =>
    withSim({ answer: "json" }, { success_pattern: '"url":\\s*"/plot_app' }, async (sim, storage) => {
      await put(storage, "a.ulg", Buffer.from("ULog"));
      sim.injectFault({ errorText: "Error: Invalid File. The log is corrupt." });
      const error = await rejectsWith(
        put(storage, "b.ulg", Buffer.from("junk")),
        "PROTOCOL",
        /^flight-review: upload of b\.ulg: .*success text.*Error: Invalid File/,
      );
      assert.equal(error.retryable, false);
      assert.equal(sim.received().length, 1);
    }));

  void test("without success_pattern any 2xx counts, even an error page (which is why the option exists)", () =>
    withSim({}, {}, async (sim, storage) => {
      sim.injectFault({ errorText: "Invalid File" });
      await put(storage, "b.ulg", Buffer.from("junk"));
      assert.equal(sim.received().length, 0);
    }));

  void test("Basic auth: missing or wrong is AUTH naming the device, never the password; right goes", async () => {
    const simOptions = { username: "pilot", password: "s3cret-pw" };
    await withSim(simOptions, {}, async (_sim, storage) => {
      const error = await rejectsWith(
        put(storage, "a.ulg", Buffer.from("x")),
        "AUTH",
        /^flight-review: upload of a\.ulg: HTTP 401/,
      );
      assert.equal(error.retryable, false);
    });
    await withSim(simOptions, { username: "pilot", password: "wrong-pw" }, async (_sim, storage) => {
      const error = await rejectsWith(
        put(storage, "a.ulg", Buffer.from("x")),
        "AUTH",
        /wrong user name or password/,
      );
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /wrong-pw|s3cret/);
    });
    await withSim(simOptions, { username: "pilot", password: "s3cret-pw" }, async (sim, storage) => {
      await put(storage, "a.ulg", Buffer.from("x"));
      assert.equal(sim.received().length, 1);
    });
  });

  void test("413 is NO_SPACE, even when the site answers while the file is still being sent", () =>
    withSim({ maxSize: 1024 * 1024 }, {}, async (sim, storage) => {
      await rejectsWith(
        put(storage, "big.ulg", randomBytes(8 * 1024 * 1024)),
        "NO_SPACE",
        /HTTP 413.*limit of 1048576/,
      );
      await put(storage, "small.ulg", randomBytes(1000));
      assert.deepEqual(
        sim.received().map((u) => u.filename),
        ["small.ulg"],
      );
    }));

  const statuses: [number, ErrorCode, boolean][] = [
    [500, "TRANSIENT", true],
    [502, "UNAVAILABLE", true],
    [503, "UNAVAILABLE", true],
    [504, "UNAVAILABLE", true],
    [429, "BUSY", true],
  ];
  for (const [status, code, retryable] of statuses) {
    void test(`${status} is ${code} (retryable: ${retryable}), and the next upload goes`, () =>
      withSim({}, {}, async (sim, storage) => {
        sim.injectFault({ status: status as 500 });
        const error = await rejectsWith(
          put(storage, "a.ulg", Buffer.from("x")),
          code,
          new RegExp(`HTTP ${status}`),
        );
        assert.equal(error.retryable, retryable);
        await put(storage, "a.ulg", Buffer.from("x"));
        assert.equal(sim.received().length, 1);
      }));
  }

  void test("other 4xx are PROTOCOL, not retried, with the site's reason", () =>
    withSim({ requiredFields: ["email"] }, {}, async (sim, storage) => {
      const error = await rejectsWith(
        put(storage, "a.ulg", Buffer.from("x")),
        "PROTOCOL",
        /HTTP 400: 400 Bad Request: missing field: email$/,
      );
      assert.equal(error.retryable, false);
      const elsewhere = open({ url: `${sim.url}/nowhere`, file_field: "filearg" });
      try {
        await rejectsWith(put(elsewhere, "a.ulg", Buffer.from("x")), "PROTOCOL", /HTTP 404/);
      } finally {
        await elsewhere.close();
      }
    }));
});

void describe("the site's own words", () => {
  void test("the first line of a page's text, with the reason when the line only repeats the status", () => {
    const cases: [string, string | undefined, string][] = [
      [
        "<html><title>400: Bad Request</title><body>400: Bad Request</body></html>",
        "text/html",
        "400: Bad Request",
      ],
      [
        "<!DOCTYPE html><html><head><title>x</title><style>p{}</style></head><body>\n<h1>413 Payload Too Large</h1><p>over &amp; out</p></body></html>",
        undefined,
        "413 Payload Too Large: over & out",
      ],
      [
        '<html><body><h1>Upload</h1><div class="alert alert-danger">\n  Invalid  File\n</div></body></html>',
        "text/html",
        "Invalid File",
      ],
      [
        "\n\nquota exceeded for ops@example.com\nline two",
        "text/plain",
        "quota exceeded for ops@example.com",
      ],
      ["x".repeat(300), "text/plain", `${"x".repeat(200)}…`],
      ["", undefined, ""],
    ];
    for (const [body, type, line] of cases) assert.equal(firstLine(body, type), line, body);
  });
});

void describe("the connection", () => {
  void test("a connection reset mid-body is a retryable error and the site keeps nothing", () =>
    withSim({}, {}, async (sim, storage) => {
      sim.injectFault({ resetAfterBytes: 200_000 });
      const error = await rejectsWith(
        put(storage, "a.ulg", randomBytes(2 * 1024 * 1024)),
        "TRANSIENT",
        /connection lost/,
      );
      assert.equal(error.retryable, true);
      assert.deepEqual(sim.received(), []);
      const data = randomBytes(2 * 1024 * 1024);
      await put(storage, "a.ulg", data);
      assert.deepEqual(await sim.content(sim.received()[0]?.id ?? ""), data);
    }));

  void test("a site that is down is UNAVAILABLE", async () => {
    const sim = await UploadFormSim.start();
    const storage = open({ url: sim.uploadUrl });
    await sim.close();
    try {
      await rejectsWith(
        put(storage, "a.ulg", Buffer.from("x")),
        "UNAVAILABLE",
        /site unreachable \(ECONNREFUSED/,
      );
    } finally {
      await storage.close();
    }
  });

  void test("a site that takes the file but never answers is TRANSIENT after `timeout`", async () => {
    const server = await ownServer("never");
    const storage = open({ url: server.url, timeout: "300ms" });
    try {
      await rejectsWith(put(storage, "a.ulg", randomBytes(10_000)), "TRANSIENT", /no answer for 0\.3 s/);
      assert.ok(server.seen.bytes > 10_000, "the body went");
    } finally {
      await storage.close();
      await server.close();
    }
  });

  void test("the body streams: the site has the first MiB before the source gives the rest", async () => {
    const server = await ownServer(() => [303, "/plot_app?log=1"]);
    const storage = open({ url: server.url });
    const mib = 1024 * 1024;
    async function* source() {
      yield Buffer.alloc(mib, 1);
      // A writer that buffered the whole body would never get here: the site waits for bytes.
      for (let waited = 0; server.seen.bytes < mib; waited += 5) {
        if (waited > 5000) throw new Error("the first MiB never reached the site: the body is buffered");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      yield Buffer.alloc(mib, 2);
    }
    try {
      assert.equal((await storage.write("a.ulg", source(), { size: 2 * mib })).size, 2 * mib);
    } finally {
      await storage.close();
      await server.close();
    }
  });

  void test("https: trusted through ca_file (relative to the config's folder); untrusted is AUTH", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-http-post-tls-"));
    try {
      let tls;
      try {
        tls = await tlsCertificate(dir);
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        const { skip } = testOptions(error.message);
        if (skip !== undefined) return t.skip(skip);
        throw error;
      }
      const { readFile } = await import("node:fs/promises");
      const sim = await UploadFormSim.start({
        tls: { cert: await readFile(tls.cert), key: await readFile(tls.key) },
      });
      const trusted = open({ url: sim.uploadUrl, file_field: "filearg", ca_file: "tls.crt" }, dir);
      const untrusted = open({ url: sim.uploadUrl, file_field: "filearg" });
      try {
        assert.ok(sim.uploadUrl.startsWith("https://"));
        await put(trusted, "a.ulg", Buffer.from("over tls"));
        assert.deepEqual(await sim.content(sim.received()[0]?.id ?? ""), Buffer.from("over tls"));
        await rejectsWith(put(untrusted, "b.ulg", Buffer.from("x")), "AUTH", /not trusted.*ca_file/);
        const missing = open({ url: sim.uploadUrl, ca_file: "nope.pem" }, dir);
        await rejectsWith(
          put(missing, "b.ulg", Buffer.from("x")),
          "PERMISSION",
          /cannot read ca_file .*nope\.pem/,
        );
        await missing.close();
      } finally {
        await trusted.close();
        await untrusted.close();
        await sim.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe("what arrives", () => {
  void test("fields arrive as configured, with {path} and {name} filled in and YAML scalars as text", () =>
    withSim(
      {},
      {
        fields: {
          description: "log {name} from {path}",
          email: "ops@example.com",
          allowForAnalysis: true,
          obfuscated: false,
          windSpeed: 3,
          feedback: "",
        },
      },
      async (sim, storage) => {
        await put(storage, "drone-7/2024-05-01/log_12.ulg", Buffer.from("x"));
        const [upload] = sim.received();
        assert.deepEqual(upload?.fields, {
          description: "log log_12.ulg from drone-7/2024-05-01/log_12.ulg",
          email: "ops@example.com",
          allowForAnalysis: "true",
          obfuscated: "false",
          windSpeed: "3",
          feedback: "",
        });
        assert.equal(upload.field, "filearg");
        assert.equal(upload.filename, "log_12.ulg", "the file's name, not its folders");
      },
    ));

  void test("file_field defaults to file", () =>
    withSim({ fileField: "file" }, { file_field: undefined }, async (sim, storage) => {
      await put(storage, "a.ulg", Buffer.from("x"));
      assert.equal(sim.received()[0]?.field, "file");
    }));

  void test("hostile file names arrive intact: Cyrillic, spaces, quotes, ;=%, emoji, NFD as NFC", () =>
    withSim({}, { fields: { description: "{name}" } }, async (sim, storage) => {
      const names = [
        "Полёт над рекой.ulg",
        "  two  spaces .ulg",
        'say "cheese".ulg',
        "it's; a=b %22 100%.ulg",
        "🚁 log.ulg",
        "Café".normalize("NFD") + ".ulg",
      ];
      for (const name of names) await put(storage, `flights/${name}`, Buffer.from(name));
      const got = sim.received();
      assert.deepEqual(
        got.map((u) => u.filename),
        names.map((n) => n.normalize("NFC")),
      );
      assert.deepEqual(
        got.map((u) => u.fields.description),
        names.map((n) => n.normalize("NFC")),
      );
    }));

  void test("control characters cannot travel in a part header: NAME_INVALID before any request", () =>
    withSim({}, {}, async (sim, storage) => {
      for (const name of ["a\r\nb.ulg", "tab\there.ulg", "nul\0.ulg"]) {
        await rejectsWith(put(storage, name, Buffer.from("x")), "NAME_INVALID", /control character/);
      }
      assert.deepEqual(sim.received(), []);
    }));

  void test("Content-Length is exact and announced (never chunked), for empty, small and large files", () =>
    withSim(
      {},
      { fields: { email: "ops@example.com", description: "Ünïcödé {path}" } },
      async (sim, storage) => {
        for (const size of [0, 1, 3 * 1024 * 1024 + 7])
          await put(storage, `Лог ${size}.ulg`, randomBytes(size));
        for (const upload of sim.received()) {
          assert.equal(upload.contentLength, upload.bodyBytes, upload.filename);
          const expected = new MultipartBody(
            [
              ["email", "ops@example.com"],
              ["description", `Ünïcödé ${upload.filename}`],
            ],
            { field: "filearg", filename: upload.filename, size: upload.size },
          ).length;
          assert.equal(upload.contentLength, expected, upload.filename);
        }
      },
    ));
});

void describe("a write-only target", () => {
  void test("stat, list, read and remove say UNSUPPORTED (not retryable); mkdir is a no-op", () =>
    withSim({}, {}, async (sim, storage) => {
      await put(storage, "a.ulg", Buffer.from("x"));
      assert.deepEqual(await storage.stat(""), { path: "", type: "dir" });
      const refused = [
        storage.stat("a.ulg"),
        storage.read("a.ulg"),
        storage.remove("a.ulg"),
        (async () => {
          for await (const _ of storage.list("")) break;
        })(),
      ];
      for (const action of refused) {
        const error = await rejectsWith(action, "UNSUPPORTED", /^flight-review: a web upload form cannot/);
        assert.equal(error.retryable, false);
      }
      await storage.mkdir("any/folder");
      assert.equal(sim.received().length, 1, "nothing was sent for them");
    }));

  void test("options: credentials together and not in the url, a valid pattern, timeouts, field names", () => {
    const parse = (options: Record<string, unknown>) =>
      httpPostAdapter.optionsSchema.safeParse({ url: "http://127.0.0.1:1/upload", ...options });
    assert.equal(parse({ username: "u" }).success, false);
    assert.equal(parse({ password: "p" }).success, false);
    assert.equal(parse({ url: "http://u:p@127.0.0.1/upload" }).success, false);
    assert.equal(parse({ url: "ftp://127.0.0.1/upload" }).success, false);
    assert.equal(parse({ success_pattern: "(" }).success, false);
    assert.equal(parse({ fields: { file: "x" } }).success, false, "a field named like the file field");
    assert.equal(parse({ fields: { "a\nb": "x" } }).success, false);
    assert.equal(parse({ timeout: "0s" }).success, false);
    assert.equal(parse({ timeout: "soon" }).success, false);
    assert.equal(parse({ extra: 1 }).success, false, "strict");
    const ok = httpPostAdapter.optionsSchema.parse({ url: "https://logs.px4.io/upload", timeout: "2m" });
    assert.equal(ok.timeout, 120);
    assert.equal(ok.file_field, "file");
    assert.deepEqual(ok.fields, {});
    assert.equal(httpPostAdapter.optionsSchema.parse({ url: "http://x/", timeout: 30 }).timeout, 30);
  });
});
