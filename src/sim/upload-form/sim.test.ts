/** The upload-form simulator on the wire: what it accepts, what it refuses, and its faults. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { request, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UploadFormSim, type UploadFormSimOptions } from "./index.ts";

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface RawOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
  /** Send only this many bytes of the body (with the full Content-Length), then drop the connection. */
  cutAfter?: number;
}

/** One request over its own connection, every header and byte under the test's control. */
function raw(url: string, options: RawOptions = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const body = options.body;
    const headers: Record<string, string> = { ...options.headers };
    if (body && !options.chunked) headers["Content-Length"] = String(body.length);
    const req = request(url, { method: options.method ?? "POST", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        });
      });
      res.on("error", reject);
    });
    req.on("error", (error) => {
      if (options.cutAfter === undefined) reject(error);
    });
    if (options.cutAfter !== undefined && body) {
      req.write(body.subarray(0, options.cutAfter), () => {
        setTimeout(() => {
          req.destroy();
          resolve({ status: 0, headers: {}, body: "" });
        }, 50);
      });
      return;
    }
    if (body && options.chunked) {
      for (let at = 0; at < body.length; at += 65536) req.write(body.subarray(at, at + 65536));
      req.end();
      return;
    }
    req.end(body);
  });
}

const BOUNDARY = "----testboundary7MA4YWxkTrZu0gW";
const TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

/** A multipart body; `disposition` is the file part's Content-Disposition parameters after name. */
function form(fields: Record<string, string>, file?: { field?: string; disposition: string; data: Buffer }) {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
    );
  }
  if (file) {
    parts.push(
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${file.field ?? "filearg"}"; ${file.disposition}\r\n` +
          "Content-Type: application/octet-stream\r\n\r\n",
      ),
      file.data,
      Buffer.from("\r\n"),
    );
  }
  parts.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(parts);
}

const post = (sim: UploadFormSim, body: Buffer, options: RawOptions = {}) =>
  raw(sim.uploadUrl, { ...options, body, headers: { "Content-Type": TYPE, ...options.headers } });

const log = (data: Buffer, filename = "log.ulg") => ({ disposition: `filename="${filename}"`, data });

async function withSim(options: UploadFormSimOptions, fn: (sim: UploadFormSim) => Promise<void>) {
  const sim = await UploadFormSim.start(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

/** Files left in the simulator's folder (no temp file may stay behind a refused upload). */
async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

void describe("uploads", () => {
  void test("an upload is kept with its name and fields and answered with a redirect to its page", () =>
    withSim({}, async (sim) => {
      const data = Buffer.from("ULog\x01\x12\x35 flight");
      const res = await post(sim, form({ email: "a@b.c", description: "first flight" }, log(data)));
      assert.equal(res.status, 302);
      const [upload] = sim.received();
      assert.ok(upload);
      assert.equal(res.headers.location, `/plot_app?log=${upload.id}`);
      assert.equal(upload.filename, "log.ulg");
      assert.equal(upload.field, "filearg");
      assert.deepEqual(upload.fields, { email: "a@b.c", description: "first flight" });
      assert.equal(upload.size, data.length);
      assert.equal(upload.sha256, createHash("sha256").update(data).digest("hex"));
      assert.deepEqual(await sim.content(upload.id), data);
      const page = await raw(`${sim.url}${res.headers.location}`, { method: "GET" });
      assert.equal(page.status, 200);
      assert.match(page.body, /log\.ulg/);
      assert.equal((await raw(`${sim.url}/plot_app?log=nope`, { method: "GET" })).status, 404);
      const formPage = await raw(sim.uploadUrl, { method: "GET" });
      assert.match(formPage.body, /type="file" name="filearg"/);
    }));

  void test("names: raw UTF-8 and quoted-pairs are decoded, filename* wins over filename, paths are cut", () =>
    withSim({}, async (sim) => {
      const names: [string, string][] = [
        ['filename="Полёт 1 \\"тест\\".ulg"', 'Полёт 1 "тест".ulg'],
        [`filename="fallback.ulg"; filename*=UTF-8''%D0%BB%D0%BE%D0%B3%20%231.ulg`, "лог #1.ulg"],
        ['filename="C:\\\\logs\\\\x.ulg"', "x.ulg"],
        ['filename="a/b/c.ulg"', "c.ulg"],
        ['filename="100%22.ulg"', "100%22.ulg"],
      ];
      for (const [disposition] of names) {
        assert.equal(
          (await post(sim, form({}, { disposition, data: Buffer.from("x") }))).status,
          302,
          disposition,
        );
      }
      assert.deepEqual(
        sim.received().map((u) => u.filename),
        names.map(([, name]) => name),
      );
    }));

  void test("Content-Length and the bytes that came are recorded; chunked bodies are taken too", () =>
    withSim({}, async (sim) => {
      const body = form({}, log(Buffer.alloc(100_000, 3)));
      await post(sim, body);
      await post(sim, body, { chunked: true });
      const [sized, chunked] = sim.received();
      assert.equal(sized?.contentLength, body.length);
      assert.equal(sized.bodyBytes, body.length);
      assert.equal(chunked?.contentLength, undefined);
      assert.equal(chunked?.bodyBytes, body.length);
    }));

  void test("without the file field, or a required field, the upload is 400 and nothing is kept", () =>
    withSim({ requiredFields: ["email"] }, async (sim) => {
      let res = await post(sim, form({ email: "a@b.c" }));
      assert.equal(res.status, 400);
      assert.match(res.body, /no file in the upload \(field &#34;filearg&#34;\)/);
      res = await post(sim, form({ email: "a@b.c" }, { ...log(Buffer.from("x")), field: "file" }));
      assert.equal(res.status, 400, "a file under another name is not the file");
      res = await post(sim, form({ email: " " }, log(Buffer.from("x"))));
      assert.equal(res.status, 400);
      assert.match(res.body, /missing field: email/);
      res = await raw(sim.uploadUrl, {
        body: Buffer.from("x=1"),
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      });
      assert.equal(res.status, 400);
      assert.deepEqual(sim.received(), []);
    }));

  void test('answer "json" gives 200 with the page address, as Flight Review does for QGroundControl', () =>
    withSim({ answer: "json" }, async (sim) => {
      const res = await post(sim, form({}, log(Buffer.from("x"))));
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), { url: `/plot_app?log=${sim.received()[0]?.id ?? ""}` });
    }));

  void test("redirectStatus and a path of one's own", () =>
    withSim({ redirectStatus: 303, path: "/api/logs" }, async (sim) => {
      assert.equal(sim.uploadUrl, `${sim.url}/api/logs`);
      assert.equal((await post(sim, form({}, log(Buffer.from("x"))))).status, 303);
      assert.equal((await raw(`${sim.url}/upload`, { body: form({}, log(Buffer.from("x"))) })).status, 404);
    }));
});

void describe("authentication and limits", () => {
  void test("Basic auth: none or wrong is 401 with a challenge; right is taken", () =>
    withSim({ username: "pilot", password: "sécret" }, async (sim) => {
      const body = form({}, log(Buffer.from("x")));
      let res = await post(sim, body);
      assert.equal(res.status, 401);
      assert.match(res.headers["www-authenticate"] ?? "", /^Basic realm="upload"/);
      const basic = (pair: string) => ({ Authorization: `Basic ${Buffer.from(pair).toString("base64")}` });
      res = await post(sim, body, { headers: basic("pilot:wrong") });
      assert.equal(res.status, 401);
      assert.deepEqual(sim.received(), []);
      res = await post(sim, body, { headers: basic("pilot:sécret") });
      assert.equal(res.status, 302);
    }));

  void test("a body over maxSize is 413, answered while the client still sends, and nothing stays", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-upload-form-test-"));
    try {
      await withSim({ maxSize: 1024 * 1024, dir }, async (sim) => {
        const big = form({}, log(Buffer.alloc(8 * 1024 * 1024, 1)));
        assert.equal((await post(sim, big)).status, 413, "by its Content-Length");
        const res = await post(sim, big, { chunked: true });
        assert.equal(res.status, 413, "chunked, once it grows past the limit");
        assert.match(res.body, /over this site&#39;s limit of 1048576 bytes/);
        assert.equal((await post(sim, form({}, log(Buffer.alloc(1000))))).status, 302, "a small one goes");
        assert.equal(sim.received().length, 1);
        assert.deepEqual(await filesIn(dir), [sim.received()[0]?.id]);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void test("a client that goes away mid-body leaves nothing, not even a temp file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-upload-form-test-"));
    try {
      await withSim({ dir }, async (sim) => {
        const body = form({}, log(Buffer.alloc(2 * 1024 * 1024, 9)));
        await post(sim, body, { cutAfter: 1024 * 1024 });
        // The server notices the dropped connection on its own time: wait for it to clean up.
        for (let i = 0; i < 500 && (await filesIn(dir)).length > 0; i++)
          await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(sim.received(), []);
        assert.deepEqual(await filesIn(dir), []);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe("faults", () => {
  void test("status: the next count uploads get it, then uploads go through", () =>
    withSim({}, async (sim) => {
      sim.injectFault({ status: 503, count: 2 });
      const body = form({}, log(Buffer.from("x")));
      assert.equal((await post(sim, body)).status, 503);
      assert.equal((await post(sim, body)).status, 503);
      assert.equal((await post(sim, body)).status, 302);
      sim.injectFault({ status: 500 });
      sim.clearFaults();
      assert.equal((await post(sim, body)).status, 302);
      assert.equal(sim.received().length, 2);
    }));

  void test("errorText: 200 with an error page instead of a redirect, nothing kept", () =>
    withSim({}, async (sim) => {
      sim.injectFault({ errorText: "Invalid File" });
      const res = await post(sim, form({}, log(Buffer.from("x"))));
      assert.equal(res.status, 200);
      assert.match(res.body, /<p class="error">Invalid File<\/p>/);
      assert.deepEqual(sim.received(), []);
    }));

  void test("resetAfterBytes: the connection drops mid-body and nothing is kept", () =>
    withSim({}, async (sim) => {
      sim.injectFault({ resetAfterBytes: 100_000 });
      await assert.rejects(
        post(sim, form({}, log(Buffer.alloc(1024 * 1024)))),
        /ECONNRESET|EPIPE|socket hang up/,
      );
      assert.deepEqual(sim.received(), []);
      assert.equal((await post(sim, form({}, log(Buffer.from("x"))))).status, 302, "only the next upload");
    }));

  void test("the control API: faults, received uploads and their bytes", () =>
    withSim({}, async (sim) => {
      const json = { "Content-Type": "application/json" };
      let res = await raw(`${sim.url}/_sim/faults`, {
        body: Buffer.from('{"status": 429, "count": 1}'),
        headers: json,
      });
      assert.equal(res.status, 204);
      res = await raw(`${sim.url}/_sim/faults`, { method: "GET" });
      assert.deepEqual(JSON.parse(res.body), {
        status: 429,
        error_text: null,
        count: 1,
        reset_after_bytes: null,
      });
      assert.equal((await post(sim, form({}, log(Buffer.from("x"))))).status, 429);
      res = await raw(`${sim.url}/_sim/faults`, { body: Buffer.from('{"status": 418}'), headers: json });
      assert.equal(res.status, 400);
      await raw(`${sim.url}/_sim/faults`, { body: Buffer.from('{"status": 500}'), headers: json });
      assert.equal((await raw(`${sim.url}/_sim/faults`, { method: "DELETE" })).status, 204);
      assert.equal((await post(sim, form({}, log(Buffer.from("bytes"))))).status, 302);
      const list = JSON.parse((await raw(`${sim.url}/_sim/received`, { method: "GET" })).body) as {
        id: string;
      }[];
      assert.equal(list.length, 1);
      res = await raw(`${sim.url}/_sim/received/${list[0]?.id ?? ""}`, { method: "GET" });
      assert.equal(res.body, "bytes");
    }));
});
