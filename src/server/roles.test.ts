/**
 * Every route of the OpenAPI document, called by nobody, by each role and by a session without
 * its CSRF token. Driven by each route's declared role (`x-ferry-role`), so routes added later are
 * covered without touching this file.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { roleAllows, ROLES, type Role } from "../auth/roles.ts";
import {
  cookieFrom,
  PASSWORD,
  startServer,
  type OpenApiDocument,
  type ProblemBody,
  type TestServer,
} from "./test-support.ts";

/** The only routes anyone may call: health, sign-in (password, identity provider) and first-start setup. */
const PUBLIC = [
  "GET /health",
  "POST /api/v1/session",
  "GET /api/v1/session/oidc",
  "GET /api/v1/session/oidc/callback",
  "GET /api/v1/session/options",
  "POST /api/v1/setup",
];
const METHODS = ["get", "post", "put", "patch", "delete"];
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

interface Operation {
  method: string;
  /** With each {param} filled in. */
  path: string;
  label: string;
  role: string;
}

describe("who may call what", () => {
  let t: TestServer;
  let operations: Operation[];
  const tokens = new Map<Role, string>();
  let adminCookie: string;

  before(async () => {
    t = await startServer();
    for (const role of ROLES) tokens.set(role, await t.tokenFor(role));
    const login = await t.json("/api/v1/session", {
      method: "POST",
      body: { name: "admin", password: PASSWORD },
    });
    assert.equal(login.status, 200);
    adminCookie = cookieFrom(login.response, "ferry_session") ?? "";
    const { body } = await t.json<OpenApiDocument>("/api/openapi.json");
    operations = Object.entries(body.paths).flatMap(([template, methods]) =>
      Object.entries(methods)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, operation]) => ({
          method: method.toUpperCase(),
          // A value every name and id pattern could take; the resource need not exist.
          path: template.replace(/\{[^}]+\}/g, "x1"),
          label: `${method.toUpperCase()} ${template}`,
          role: operation?.["x-ferry-role"] ?? "(none)",
        })),
    );
  });
  after(() => t.close());

  /** One call; a stream (SSE) that is let through is closed at once rather than read for ever. */
  const call = async (
    op: Operation,
    init: { token?: string; cookie?: string; headers?: Record<string, string> } = {},
  ) => {
    const response = await t.fetch(op.path, { method: op.method, ...init });
    if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
      await response.body?.cancel();
      return { status: response.status, body: undefined as unknown as ProblemBody, response };
    }
    const text = await response.text();
    // JSON answers and problems; /metrics answers in Prometheus' text format.
    const json = /json/.test(response.headers.get("content-type") ?? "");
    return {
      status: response.status,
      body: (text === "" || !json ? undefined : JSON.parse(text)) as ProblemBody,
      response,
    };
  };

  test("the document lists the routes, each with a role", () => {
    const labels = operations.map((op) => op.label);
    for (const expected of [
      ...PUBLIC,
      "GET /api/v1/me",
      "DELETE /api/v1/session",
      "GET /api/v1/users",
      "POST /api/v1/tokens",
      "GET /metrics",
      "PATCH /api/v1/me/notifications",
    ])
      assert.ok(labels.includes(expected), `${expected} is missing from ${labels.join(", ")}`);
    for (const op of operations)
      assert.ok(["public", ...ROLES].includes(op.role), `${op.label} declares the role ${op.role}`);
    assert.deepEqual(
      operations
        .filter((op) => op.role === "public")
        .map((op) => op.label)
        .sort(),
      [...PUBLIC].sort(),
      "only health, sign-in (and how one signs in) and setup are open to anyone",
    );
  });

  test("an anonymous caller is refused everywhere else with 401", async () => {
    for (const op of operations) {
      const { status, body, response } = await call(op);
      if (op.role === "public") {
        assert.ok(status !== 401 && status !== 403, `${op.label}: ${status}`);
        continue;
      }
      assert.equal(status, 401, `${op.label} answered ${status} to nobody`);
      assert.equal(body.type, "tag:ferry,2026:problem:unauthenticated", op.label);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer realm="ferry"/, op.label);
    }
  });

  test("a bad token is refused with 401, as no token is, in either header", async () => {
    for (const op of operations.filter((o) => o.role !== "public")) {
      const bad = `${tokens.get("admin") ?? ""}x`;
      assert.equal((await call(op, { token: bad })).status, 401, op.label);
      assert.equal(
        (await call(op, { headers: { "x-api-key": bad } })).status,
        401,
        `${op.label} (X-Api-Key)`,
      );
    }
  });

  for (const role of ROLES)
    test(`a ${role} gets exactly the routes of ${role} and below`, async () => {
      const token = tokens.get(role);
      for (const op of operations.filter((o) => o.role !== "public")) {
        const { status, body } = await call(op, { ...(token === undefined ? {} : { token }) });
        if (roleAllows(role, op.role as Role)) {
          // Let through: the route itself answers (400 for the missing body, 404 for x1, ...).
          assert.ok(
            status !== 401 && status !== 403,
            `${op.label} refused a ${role}: ${status} ${JSON.stringify(body)}`,
          );
        } else {
          assert.equal(status, 403, `${op.label} let a ${role} through (${status})`);
          assert.equal(body.type, "tag:ferry,2026:problem:forbidden", op.label);
          assert.match(body.detail, new RegExp(`needs the role ${op.role}`), op.label);
        }
      }
    });

  test("a session cookie without its CSRF token changes nothing anywhere", async () => {
    for (const op of operations.filter((o) => o.role !== "public" && UNSAFE.has(o.method))) {
      const { status, body } = await call(op, { cookie: adminCookie });
      assert.equal(status, 403, `${op.label} took a cookie without CSRF token (${status})`);
      assert.equal(body.type, "tag:ferry,2026:problem:csrf", op.label);
    }
    // Reading needs no CSRF token.
    assert.equal((await t.json("/api/v1/me", { cookie: adminCookie })).status, 200);
  });
});
