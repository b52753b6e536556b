/**
 * Serving the dashboard (docs/adr/0019): its page at / and at its own paths, its assets (sent
 * compressed when the build left a .br or .gz), never in the way of /api; and the API alone, said
 * so, when there is no build.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { brotliCompressSync } from "node:zlib";
import { request } from "undici";
import { startServer, type TestServer } from "./test-support.ts";

const PAGE = '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1.js"></script>';
const SCRIPT = "console.log('ferry');".repeat(50);

describe("a server with a dashboard build", () => {
  let dir: string;
  let t: TestServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-dashboard-"));
    await mkdir(join(dir, "assets"));
    await writeFile(join(dir, "index.html"), PAGE);
    await writeFile(join(dir, "assets", "app-1.js"), SCRIPT);
    await writeFile(join(dir, "assets", "app-1.js.br"), brotliCompressSync(SCRIPT));
    t = await startServer({ dashboard: dir });
  });
  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("says where it is", () => {
    assert.ok(t.announced.includes(`ferry: dashboard at ${t.url}/`), t.announced.join("\n"));
  });

  test("answers its page at / and at the page's own paths, with its CSP, never cached", async () => {
    for (const path of ["/", "/jobs", "/printers/mk4-a", "/admin?tab=users"]) {
      const response = await t.fetch(path);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get("content-type") ?? "", /^text\/html/, path);
      assert.equal(response.headers.get("cache-control"), "no-cache", path);
      assert.match(response.headers.get("content-security-policy") ?? "", /script-src 'self';/, path);
      assert.equal(await response.text(), PAGE, path);
    }
  });

  test("sends an asset compressed when asked, cached for good", async () => {
    const response = await request(`${t.url}/assets/app-1.js`, {
      headers: { "accept-encoding": "br, gzip" },
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers["content-encoding"], "br");
    assert.match(String(response.headers["cache-control"]), /immutable/);
    const body = Buffer.from(await response.body.arrayBuffer());
    assert.ok(body.length < SCRIPT.length, "compressed");
    const plain = await t.fetch("/assets/app-1.js");
    assert.equal(await plain.text(), SCRIPT);
  });

  test("never shadows the API, /health or a missing asset", async () => {
    for (const path of ["/api/v1/nothing-here", "/api", "/assets/gone-2.js"]) {
      const { status, body, response } = await t.json(path);
      assert.equal(status, 404, path);
      assert.match(response.headers.get("content-type") ?? "", /problem\+json/, path);
      assert.match(body.detail, /no route GET/, path);
    }
    assert.equal((await t.fetch("/api/v1/printers")).status, 401);
    assert.equal((await t.fetch("/health")).status, 200);
    assert.equal(
      (await t.fetch("/jobs", { method: "POST", body: {} })).status,
      404,
      "only GET answers the page",
    );
  });
});

test("without a build the server answers the API only, and says so", async () => {
  const missing = join(tmpdir(), "ferry-no-dashboard-here");
  const t = await startServer({ dashboard: missing });
  try {
    assert.ok(
      t.announced.some(
        (line) =>
          line.includes(`no dashboard (${missing}/index.html is missing`) && line.includes("API only"),
      ),
      t.announced.join("\n"),
    );
    assert.equal((await t.fetch("/")).status, 404);
    assert.equal((await t.fetch("/jobs")).status, 404);
    assert.equal((await t.fetch("/health")).status, 200);
  } finally {
    await t.close();
  }
});
