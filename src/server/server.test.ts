import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { Agent, fetch } from "undici";
import { waitFor } from "../../test/support/wait.ts";
import { SESSION_TTL_MS } from "../auth/accounts.ts";
import {
  cookieFrom,
  PASSWORD,
  startServer,
  type OpenApiDocument,
  type TestServer,
  type UserBody,
} from "./test-support.ts";

const run = promisify(execFile);

describe("the server", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  test("GET /health answers without sign-in", async () => {
    const { status, body } = await t.json<{ status: string }>("/health");
    assert.equal(status, 200);
    assert.deepEqual(body, { status: "ok" });
  });

  test("the OpenAPI 3.1 document and its UI come from this server, nothing from elsewhere", async () => {
    const { status, body } = await t.json<OpenApiDocument>("/api/openapi.json");
    assert.equal(status, 200);
    assert.equal(body.openapi, "3.1.0");
    assert.equal(body.paths["/api/v1/me"]?.get?.["x-ferry-role"], "viewer");
    assert.equal(body.paths["/api/v1/users"]?.post?.["x-ferry-role"], "admin");
    assert.deepEqual(body.paths["/health"]?.get?.security, []);
    assert.equal(body.paths["/api/docs/"], undefined, "the docs' own routes are not in the document");
    // The body schema of a route is in the document, strict as the route is.
    const userBody = body.paths["/api/v1/users"].post.requestBody?.content["application/json"]?.schema;
    assert.equal(userBody?.additionalProperties, false);
    assert.deepEqual(userBody.required?.sort(), ["name", "role"]);

    const page = await t.fetch("/api/docs/");
    assert.equal(page.status, 200);
    const html = await page.text();
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? "");
    assert.ok(sources.length >= 4, html);
    for (const source of sources) {
      assert.ok(!/^(https?:)?\/\//.test(source), `loads ${source} from elsewhere`);
      const asset = await t.fetch(new URL(source, `${t.url}/api/docs/`).pathname);
      assert.equal(asset.status, 200, source);
      await asset.arrayBuffer();
    }
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  });

  test("an unknown route is a problem, as JSON", async () => {
    const { status, body, response } = await t.json("/api/v1/nothing-here?token=secret");
    assert.equal(status, 404);
    assert.equal(response.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.equal(body.type, "tag:ferry,2026:problem:not-found");
    assert.equal(body.detail, "no route GET /api/v1/nothing-here");
  });
});

describe("first start", () => {
  test("without FERRY_ADMIN_PASSWORD: a one-time setup link makes the first admin, then setup refuses", async () => {
    const t = await startServer();
    try {
      assert.equal(t.announced.length, 2);
      assert.match(
        t.announced[0] ?? "",
        /^ferry: server listening on http:\/\/127\.0\.0\.1:\d+ \(API documents: .*\/api\/docs\)$/,
      );
      const link = /(http:\/\/\S+\/setup\?token=(\S+))/.exec(t.announced[1] ?? "");
      assert.ok(link?.[2], t.announced[1]);
      const token = link[2];
      const page = await t.fetch(new URL(link[1] ?? "").pathname + new URL(link[1] ?? "").search);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /create the first admin/);

      const wrong = await t.json("/api/v1/setup", {
        method: "POST",
        body: { token: "x" + token, password: PASSWORD },
      });
      assert.equal(wrong.status, 403);
      assert.equal(await t.app.stored.accounts.hasAdmin(), false);
      const made = await t.json<UserBody>("/api/v1/setup", {
        method: "POST",
        body: { token, password: PASSWORD },
      });
      assert.equal(made.status, 201);
      assert.deepEqual([made.body.name, made.body.role], ["admin", "admin"]);
      const again = await t.json("/api/v1/setup", {
        method: "POST",
        body: { token, name: "other", password: PASSWORD },
      });
      assert.equal(again.status, 409);
      assert.match(again.body.detail, /setup is done/);
      assert.deepEqual(
        (await t.app.stored.accounts.listUsers()).map((u) => u.name),
        ["admin"],
      );
      // The token is in no log.
      assert.ok(!t.logs.some((line) => line.includes(token)));
    } finally {
      await t.close();
    }
  });

  test("with FERRY_ADMIN_PASSWORD: the user admin is made with it, and no link is shown", async () => {
    const t = await startServer({ env: { FERRY_ADMIN_PASSWORD: PASSWORD } });
    try {
      assert.equal(t.announced.length, 1, "where it listens, and no setup link");
      const { status } = await t.json("/api/v1/session", {
        method: "POST",
        body: { name: "admin", password: PASSWORD },
      });
      assert.equal(status, 200);
      const setup = await t.json("/api/v1/setup", {
        method: "POST",
        body: { token: "anything", password: PASSWORD },
      });
      assert.equal(setup.status, 409);
    } finally {
      await t.close();
    }
  });
});

describe("browser sessions", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    await t.tokenFor("admin", "boss");
  });
  after(() => t.close());

  test("sign-in sets an httpOnly SameSite=Lax cookie; changes need the CSRF token; sign-out ends it", async () => {
    const login = await t.json<{ csrfToken: string }>("/api/v1/session", {
      method: "POST",
      body: { name: "boss", password: PASSWORD },
    });
    assert.equal(login.status, 200);
    const setCookie = login.response.headers.getSetCookie()[0] ?? "";
    assert.match(setCookie, /^ferry_session=[A-Za-z0-9_-]{43};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Lax/);
    assert.doesNotMatch(setCookie, /Secure/, "plain http: a Secure cookie would never come back");
    assert.match(setCookie, new RegExp(`Max-Age=${SESSION_TTL_MS / 1000}`));
    const cookie = cookieFrom(login.response, "ferry_session");
    assert.ok(cookie);
    const csrf = login.body.csrfToken;

    const me = await t.json<{ user: UserBody; via: string; csrfToken: string }>("/api/v1/me", { cookie });
    assert.equal(me.status, 200);
    assert.deepEqual([me.body.user.name, me.body.via, me.body.csrfToken], ["boss", "session", csrf]);

    const user = { name: "carol", role: "viewer" };
    const refused = await t.json("/api/v1/users", { method: "POST", cookie, body: user });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.type, "tag:ferry,2026:problem:csrf");
    const forged = await t.json("/api/v1/users", {
      method: "POST",
      cookie,
      headers: { "x-csrf-token": csrf.slice(1) + "A" },
      body: user,
    });
    assert.equal(forged.status, 403);
    assert.equal(await t.app.stored.accounts.getUser("carol"), undefined, "refused changes change nothing");
    const made = await t.json("/api/v1/users", {
      method: "POST",
      cookie,
      headers: { "x-csrf-token": csrf },
      body: user,
    });
    assert.equal(made.status, 201);

    const out = await t.fetch("/api/v1/session", {
      method: "DELETE",
      cookie,
      headers: { "x-csrf-token": csrf },
    });
    assert.equal(out.status, 204);
    assert.match(out.headers.getSetCookie()[0] ?? "", /^ferry_session=;.*Expires=Thu, 01 Jan 1970/);
    const after = await t.json("/api/v1/me", { cookie });
    assert.equal(after.status, 401);
  });

  test("a session ends after its lifetime", async () => {
    const login = await t.json("/api/v1/session", {
      method: "POST",
      body: { name: "boss", password: PASSWORD },
    });
    const cookie = cookieFrom(login.response, "ferry_session") ?? "";
    assert.equal((await t.json("/api/v1/me", { cookie })).status, 200);
    t.clock.advance(SESSION_TTL_MS);
    assert.equal((await t.json("/api/v1/me", { cookie })).status, 401);
  });
});

describe("over https (public_url)", () => {
  test("the cookie is Secure and __Host- bound", async () => {
    const t = await startServer({ yaml: "  public_url: https://ferry.example.com\n" });
    try {
      await t.tokenFor("viewer", "v");
      const login = await t.json("/api/v1/session", {
        method: "POST",
        body: { name: "v", password: PASSWORD },
      });
      const setCookie = login.response.headers.getSetCookie()[0] ?? "";
      assert.match(setCookie, /^__Host-ferry_session=/);
      assert.match(setCookie, /Secure/);
      assert.match(setCookie, /Path=\//);
      assert.match(t.announced[1] ?? "", /open https:\/\/ferry\.example\.com\/setup\?token=/);
    } finally {
      await t.close();
    }
  });
});

describe("over TLS (server.tls)", () => {
  test("the server speaks https with the configured certificate, and its cookie is Secure", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-tls-"));
    try {
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ]);
      const t = await startServer({
        yaml: `  tls: { cert_file: ${join(dir, "cert.pem")}, key_file: ${join(dir, "key.pem")} }\n`,
      });
      try {
        await t.tokenFor("viewer", "v");
        const https = t.url.replace("http:", "https:");
        const dispatcher = new Agent({ connect: { ca: await readFile(join(dir, "cert.pem")) } });
        const health = await fetch(`${https}/health`, { dispatcher });
        assert.equal(health.status, 200);
        const login = await fetch(`${https}/api/v1/session`, {
          dispatcher,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name: "v", password: PASSWORD }),
        });
        assert.equal(login.status, 200);
        assert.match(login.headers.getSetCookie()[0] ?? "", /^__Host-ferry_session=.*; Secure/);
        assert.match(t.announced[1] ?? "", /open https:\/\/127\.0\.0\.1:\d+\/setup\?token=/);
        // Plain http to the TLS port gets no API.
        await assert.rejects(fetch(`${t.url}/health`));
        await dispatcher.close();
      } finally {
        await t.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("stopping", () => {
  test("a request in flight is answered before the server closes; new connections are refused", async () => {
    const t = await startServer();
    try {
      const body = JSON.stringify({ name: "nobody", password: "wrong password" });
      const raw = t.server.fastify.server;
      const seen = new Promise((resolve) => raw.once("request", resolve));
      const answered = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port: new URL(t.url).port,
            path: "/api/v1/session",
            method: "POST",
            headers: { "content-type": "application/json", "content-length": body.length },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
          },
        );
        req.on("error", reject);
        // Half the body: the request is in flight when the close begins, and ends after.
        req.write(body.slice(0, 10));
        void seen.then(async () => {
          closing = t.server.close();
          await waitFor("the server to stop listening", () => !raw.listening);
          await assert.rejects(t.fetch("/health"), "a new connection is refused");
          req.end(body.slice(10));
        });
      });
      let closing: Promise<void> | undefined;
      // Answered in full, and told that its connection ends (so the close need not wait for it).
      assert.deepEqual(await answered, { status: 401, connection: "close" });
      await closing;
    } finally {
      await t.close();
    }
  });
});
