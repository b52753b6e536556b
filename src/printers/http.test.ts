import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { FerryError, isFerryError } from "../core/errors.ts";
import { silentLogger } from "../core/logger.ts";
import { HttpClient, networkError, statusCodes, type HttpVendor } from "./http.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

const seen: Seen[] = [];
let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end("{}");
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk: Buffer) => (body += chunk.toString()));
  req.on("end", () => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    answer(req, res);
  });
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/proxied/`;
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const refused: Parameters<HttpVendor["refusal"]>[] = [];
function client(vendor: Partial<HttpVendor> = {}): HttpClient {
  const http = new HttpClient(
    { url, printer: "p1" },
    {
      connections: 2,
      terms: { host: "printer" },
      refusal: (...args) => {
        refused.push(args);
        return new FerryError("PROTOCOL", `refused ${args[0]}`);
      },
      maxJsonBytes: 64,
      ...vendor,
    },
  );
  after(() => http.close());
  return http;
}

void test("a request goes below the base path with its query and JSON body; the vendor's credentials win", async () => {
  seen.length = 0;
  const targets: string[] = [];
  const http = client({
    auth: (method, target) => {
      targets.push(`${method} ${target}`);
      return { "X-Api-Key": "the-key" };
    },
  });
  const res = await http.request("POST", "/api/job", {
    query: { path: "a b" },
    json: { command: "start" },
    headers: { "X-Api-Key": "not this one", Overwrite: "?1" },
  });
  await res.body.dump();
  assert.deepEqual(targets, ["POST /proxied/api/job?path=a+b"]);
  const req = seen.at(0);
  assert.ok(req);
  assert.equal(req.url, "/proxied/api/job?path=a+b");
  assert.equal(req.headers["x-api-key"], "the-key");
  assert.equal(req.headers.overwrite, "?1");
  assert.equal(req.headers["content-type"], "application/json");
  assert.equal(req.headers.accept, "application/json");
  assert.equal(req.body, '{"command":"start"}');
});

void test("a GET that loses its connection is sent once more when the vendor asks; a POST, or another vendor's, is not", async () => {
  let drops = 0;
  answer = (req, res) => {
    if (drops > 0) {
      drops--;
      req.socket.destroy();
      return;
    }
    res.end("{}");
  };
  try {
    const resending = client({ resend: { vendor: "Test", logger: silentLogger } });
    seen.length = 0;
    drops = 1;
    await (await resending.send("GET", "/status")).body.dump();
    assert.equal(seen.length, 2, "sent once more");

    seen.length = 0;
    drops = 1;
    await assert.rejects(resending.send("POST", "/job"), (error) => isFerryError(error, "TRANSIENT"));
    assert.equal(seen.length, 1, "a POST is not sent again");

    seen.length = 0;
    drops = 1;
    await assert.rejects(client().send("GET", "/status"), (error) => isFerryError(error, "TRANSIENT"));
    assert.equal(seen.length, 1, "not without resend");
  } finally {
    answer = (_req, res) => res.end("{}");
  }
});

void test("check hands the vendor the status and the device's words; readJson bounds and parses", async () => {
  const http = client();
  answer = (req, res) => {
    if (req.url?.endsWith("/missing")) res.writeHead(404).end("no such file");
    else if (req.url?.endsWith("/big")) res.end(JSON.stringify({ text: "x".repeat(100) }));
    else if (req.url?.endsWith("/html")) res.end("<html>");
    else res.end('{"ok":true}');
  };
  try {
    const context = { printer: "p1", operation: "stat", subject: "a.gcode" };
    refused.length = 0;
    const missing = await http.send("GET", "/missing");
    await assert.rejects(http.check(missing, [200], context, "NOT_FOUND"), /refused 404/);
    assert.deepEqual(refused, [[404, "no such file", context, "NOT_FOUND"]]);
    assert.deepEqual(await http.readJson(await http.call("GET", "/ok", [200]), context), { ok: true });
    await assert.rejects(
      http.readJson(await http.send("GET", "/big"), context),
      (error) => isFerryError(error, "PROTOCOL") && /p1: stat: reply too large/.test(error.message),
    );
    await assert.rejects(
      http.readJson(await http.send("GET", "/html"), context),
      (error) =>
        isFerryError(error, "PROTOCOL") && error.subject === "a.gcode" && /not JSON/.test(error.message),
    );
  } finally {
    answer = (_req, res) => res.end("{}");
  }
  await http.close();
  await assert.rejects(http.send("GET", "/ok"), (error) => isFerryError(error, "UNAVAILABLE"));
});

void test("network failures in a vendor's words; its status table over the shared one", () => {
  const coded = (code: string) => Object.assign(new Error(`${code} happened`), { code });
  const context = { printer: "p1", operation: "upload", subject: "a.gcode" };
  const away = networkError(coded("ECONNREFUSED"), context, { host: "OctoPrint" });
  assert.equal(away.code, "UNAVAILABLE");
  assert.equal(away.message, "p1: upload a.gcode: OctoPrint unreachable (ECONNREFUSED)");
  assert.equal(networkError(coded("ETIMEDOUT"), context, { host: "printer" }).code, "UNAVAILABLE");
  assert.equal(networkError(coded("ECONNRESET"), context, { host: "printer" }).code, "TRANSIENT");
  const cert = coded("DEPTH_ZERO_SELF_SIGNED_CERT");
  const untrusted = networkError(cert, context, {
    host: "printer",
    untrusted: { code: "AUTH", text: "the certificate is not trusted" },
  });
  assert.equal(untrusted.code, "AUTH");
  assert.equal(untrusted.retryable, false);
  assert.equal(networkError(cert, context, { host: "printer" }).code, "TRANSIENT", "no words: any failure");
  const mismatch = networkError(coded("UND_ERR_REQ_CONTENT_LENGTH_MISMATCH"), context, { host: "printer" });
  assert.equal(mismatch.code, "PROTOCOL");
  assert.equal(
    networkError(coded("ECONNRESET"), context, { host: "printer" }, AbortSignal.abort()).code,
    "ABORTED",
  );

  const codeOf = statusCodes({ 422: "NAME_INVALID", 503: "BUSY" });
  assert.deepEqual([401, 404, 422, 502, 503, 418].map(codeOf), [
    "AUTH",
    "NOT_FOUND",
    "NAME_INVALID",
    "TRANSIENT",
    "BUSY",
    "PROTOCOL",
  ]);
  assert.throws(
    () => new HttpClient({ url: "ftp://x", printer: "p1" }, {} as HttpVendor),
    /url must be http/,
  );
});
