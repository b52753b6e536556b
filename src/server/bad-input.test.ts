/** What the server does with bad requests: a problem naming what is wrong, and nothing changed. */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { SIGN_IN_LIMIT } from "./routes/session.ts";
import { BODY_LIMIT } from "./server.ts";
import { PASSWORD, startServer, type TestServer, type UserBody } from "./test-support.ts";

describe("bad input", () => {
  let t: TestServer;
  let admin: string;
  const users = async () => (await t.app.stored.accounts.listUsers()).map((u) => u.name).sort();

  before(async () => {
    t = await startServer();
    admin = await t.tokenFor("admin");
  });
  after(() => t.close());

  test("a body over the limit is refused with 413 and changes nothing", async () => {
    const before = await users();
    const { status, body } = await t.json("/api/v1/users", {
      method: "POST",
      token: admin,
      body: { name: "big", role: "viewer", password: "x".repeat(BODY_LIMIT) },
    });
    assert.equal(status, 413);
    assert.equal(body.type, "tag:ferry,2026:problem:body-too-large");
    assert.deepEqual(await users(), before);
  });

  test("wrong types name each field at fault", async () => {
    const { status, body, response } = await t.json("/api/v1/users", {
      method: "POST",
      token: admin,
      body: { name: 5, role: "boss", password: "short" },
    });
    assert.equal(status, 400);
    assert.equal(response.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.equal(body.type, "tag:ferry,2026:problem:validation");
    assert.deepEqual(body.errors?.map((e) => e.path).sort(), ["body.name", "body.password", "body.role"]);
    assert.match(body.detail, /body\.role: .*"admin"/);
    const missing = await t.json("/api/v1/users", { method: "POST", token: admin, body: { name: "nobody" } });
    assert.deepEqual(missing.body.errors, [{ path: "body.role", message: "required" }]);
  });

  test("an unknown field is refused by name, and the user is not made", async () => {
    const { status, body } = await t.json("/api/v1/users", {
      method: "POST",
      token: admin,
      body: { name: "eve", role: "viewer", isAdmin: true },
    });
    assert.equal(status, 400);
    assert.deepEqual(body.errors, [{ path: "body.isAdmin", message: "unknown field" }]);
    assert.equal(await t.app.stored.accounts.getUser("eve"), undefined);
  });

  test("a body that is not JSON, or of another media type, is refused", async () => {
    const broken = await t.json("/api/v1/users", {
      method: "POST",
      token: admin,
      body: '{"name": "x",',
      headers: { "content-type": "application/json" },
    });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.detail, "body is not valid JSON");
    const form = await t.json("/api/v1/users", {
      method: "POST",
      token: admin,
      body: "name=x&role=admin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(form.status, 415);
  });

  test("path traversal in a path parameter is refused as an invalid name", async () => {
    for (const path of ["/api/v1/users/..%2F..%2Fetc%2Fpasswd", "/api/v1/users/.hidden"]) {
      const { status, body } = await t.json(path, { token: admin });
      assert.equal(status, 400, path);
      assert.equal(body.errors?.[0]?.path, "params.name", path);
    }
    // fetch would turn %2E%2E into ".." and resolve it away; sent as written, it is a bad name.
    const dots = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: new URL(t.url).port,
          path: "/api/v1/users/%2E%2E",
          headers: { authorization: `Bearer ${admin}` },
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(dots.status, 400, dots.body);
    assert.match(dots.body, /"path":"params\.name"/);
    const token = await t.json("/api/v1/tokens/..%2Fusers", { method: "DELETE", token: admin });
    assert.equal(token.status, 400);
    assert.deepEqual(token.body.errors, [{ path: "params.id", message: "a token id is 16 hex digits" }]);
  });

  test("a deleted user's token and a disabled user's token are refused", async () => {
    const token = await t.tokenFor("operator", "leaver");
    assert.equal((await t.json("/api/v1/me", { token })).status, 200);
    const disable = await t.json<UserBody>("/api/v1/users/leaver", {
      method: "PATCH",
      token: admin,
      body: { disabled: true },
    });
    assert.equal(disable.body.disabled, true);
    assert.equal((await t.json("/api/v1/me", { token })).status, 401);
    await t.json("/api/v1/users/leaver", { method: "PATCH", token: admin, body: { disabled: false } });
    assert.equal((await t.json("/api/v1/me", { token })).status, 200);
    assert.equal((await t.fetch("/api/v1/users/leaver", { method: "DELETE", token: admin })).status, 204);
    const gone = await t.json("/api/v1/me", { token });
    assert.equal(gone.status, 401);
    assert.match(gone.response.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
  });

  test("an expired token is refused", async () => {
    await t.tokenFor("user", "temp");
    const session = await t.json("/api/v1/session", {
      method: "POST",
      body: { name: "temp", password: PASSWORD },
    });
    assert.equal(session.status, 200);
    const made = await t.json<{ secret: string; token: { expiresAt: string } }>("/api/v1/tokens", {
      method: "POST",
      token: admin,
      body: { name: "hour", user: "temp", expires: "1h" },
    });
    assert.equal(made.status, 201);
    assert.equal(made.body.token.expiresAt, new Date(t.clock.now() + 3600_000).toISOString());
    assert.equal((await t.json("/api/v1/me", { token: made.body.secret })).status, 200);
    t.clock.advance(3600_000);
    assert.equal((await t.json("/api/v1/me", { token: made.body.secret })).status, 401);
  });

  test("a token never gets more than its creator acts with, nor another user's unless an admin asks", async () => {
    const viewer = await t.tokenFor("viewer", "watcher");
    await t.tokenFor("user", "other");
    const above = await t.json("/api/v1/tokens", {
      method: "POST",
      token: viewer,
      body: { name: "up", role: "admin" },
    });
    assert.equal(above.status, 403);
    assert.equal(above.body.subject, "role");
    const foreign = await t.json("/api/v1/tokens", {
      method: "POST",
      token: viewer,
      body: { name: "x", user: "other" },
    });
    assert.equal(foreign.status, 403);
    const beyondOwner = await t.json("/api/v1/tokens", {
      method: "POST",
      token: admin,
      body: { name: "x", user: "watcher", role: "operator" },
    });
    assert.equal(beyondOwner.status, 403);
    assert.match(beyondOwner.body.detail, /cannot have the role operator/);
    const others = await t.json("/api/v1/tokens?user=other", { token: viewer });
    assert.equal(others.status, 403);
    // Another user's token is not found by a non-admin (ids are not to be probed).
    const othersToken = (await t.app.stored.accounts.listTokens("other"))[0]?.id ?? "";
    const revoke = await t.json(`/api/v1/tokens/${othersToken}`, { method: "DELETE", token: viewer });
    assert.equal(revoke.status, 404);
    assert.equal((await t.app.stored.accounts.listTokens("other")).length, 1);
  });

  test("the last admin cannot be removed or demoted", async () => {
    const removed = await t.json("/api/v1/users/admin", { method: "DELETE", token: admin });
    assert.equal(removed.status, 409);
    assert.equal(removed.body.type, "tag:ferry,2026:problem:conflict");
    const demoted = await t.json("/api/v1/users/admin", {
      method: "PATCH",
      token: admin,
      body: { role: "viewer" },
    });
    assert.equal(demoted.status, 409);
    assert.equal((await t.app.stored.accounts.getUser("admin"))?.role, "admin");
  });

  test(`sign-in allows ${SIGN_IN_LIMIT.limit} attempts a minute per user and address, then 429 with Retry-After`, async () => {
    await t.tokenFor("viewer", "target");
    const attempt = (password: string, name = "target") =>
      t.json("/api/v1/session", { method: "POST", body: { name, password } });
    for (let i = 0; i < SIGN_IN_LIMIT.limit; i++) assert.equal((await attempt("wrong guess")).status, 401);
    const limited = await attempt(PASSWORD);
    assert.equal(limited.status, 429, "even the right password waits");
    assert.equal(limited.body.type, "tag:ferry,2026:problem:rate-limited");
    assert.equal(limited.response.headers.get("retry-after"), "60");
    // Another user from the same address is not held up.
    assert.equal((await attempt(PASSWORD, "admin")).status, 200);
    t.clock.advance(30_000);
    assert.equal((await attempt(PASSWORD)).response.headers.get("retry-after"), "30");
    t.clock.advance(30_000);
    assert.equal((await attempt(PASSWORD)).status, 200);
  });
});

describe("secrets", () => {
  test("passwords, tokens, session ids and hashes never appear in logs or answers", async () => {
    const t = await startServer();
    try {
      const admin = await t.tokenFor("admin");
      const login = await t.json("/api/v1/session", {
        method: "POST",
        body: { name: "admin", password: PASSWORD },
      });
      const sessionId =
        /ferry_session=([^;]+)/.exec(login.response.headers.get("set-cookie") ?? "")?.[1] ?? "";
      assert.ok(sessionId.length > 20);
      const made = await t.json<{ secret: string }>("/api/v1/tokens", {
        method: "POST",
        token: admin,
        body: { name: "ci", role: "operator" },
      });
      const shownOnce = t.bodies.length - 1;
      assert.match(made.body.secret, /^ferry_[0-9a-f]{16}_/);
      await t.json("/api/v1/users", {
        method: "POST",
        token: admin,
        body: { name: "bo", role: "user", password: PASSWORD },
      });
      for (const path of ["/api/v1/tokens", "/api/v1/users", "/api/v1/users/bo", "/api/v1/me"])
        assert.equal((await t.json(path, { token: admin })).status, 200, path);
      assert.equal((await t.json("/api/v1/me", { token: made.body.secret })).status, 200);
      await t.json("/api/v1/session", {
        method: "POST",
        body: { name: "admin", password: "wrong " + PASSWORD },
      });

      const secrets = [PASSWORD, admin, made.body.secret, sessionId, "$argon2"];
      const logs = t.logs.join("\n");
      assert.ok(t.logs.length >= 8, "requests are logged");
      for (const secret of secrets) assert.ok(!logs.includes(secret), `a log holds ${secret.slice(0, 12)}…`);
      t.bodies.forEach((body, i) => {
        for (const secret of secrets)
          if (!(i === shownOnce && secret === made.body.secret))
            assert.ok(!body.includes(secret), `answer ${i} holds ${secret.slice(0, 12)}…: ${body}`);
      });
    } finally {
      await t.close();
    }
  });
});
