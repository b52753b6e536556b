/**
 * `ferry serve` with the HTTP API, as a user runs it: users and tokens made with the CLI, the
 * first admin from FERRY_ADMIN_PASSWORD, the API called with a token, and SIGTERM closing the
 * server and stopping within the deadline.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { fetch } from "undici";
import { waitFor } from "./support/wait.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const run = promisify(execFile);

let dir: string;
let config: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-serve-server-"));
  config = join(dir, "ferry.yaml");
  await writeFile(config, "data_dir: ./data\nserver:\n  listen: 127.0.0.1:0\n");
});
after(() => rm(dir, { recursive: true, force: true }));

const ferry = (args: string[], input?: string) => {
  const child = run(process.execPath, [cli, ...args, "-c", config], { cwd: dir, env: { ...process.env } });
  if (input !== undefined) child.child.stdin?.end(input);
  return child;
};

test("ferry user and ferry token manage the server's accounts", async () => {
  const added = await ferry(
    ["user", "add", "ops", "--role", "operator", "--password-stdin"],
    "ops password 1\n",
  );
  assert.match(added.stdout, /^added ops \(operator\)$/m);
  await ferry(["user", "add", "bot", "--role", "viewer"]);
  const users = JSON.parse((await ferry(["user", "list", "--json"])).stdout) as {
    name: string;
    hasPassword: boolean;
  }[];
  assert.deepEqual(
    users.map((u) => [u.name, u.hasPassword]),
    [
      ["bot", false],
      ["ops", true],
    ],
  );
  await assert.rejects(
    ferry(["token", "create", "x", "--user", "bot", "--role", "admin"]),
    /cannot have the role admin/,
  );
  await assert.rejects(
    ferry(["user", "add", "x", "--role", "boss"]),
    /Allowed choices are viewer, user, operator, admin/,
  );
  const created = await ferry(["token", "create", "ci", "--user", "ops", "--expires", "30d"]);
  assert.match(created.stdout, /^ferry_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
  assert.match(
    created.stderr,
    /"ci" of ops \(operator\), expires 20\d\d-\d\d-\d\dT.*; it is shown this once/,
  );
  const listed = await ferry(["token", "list", "--json"]);
  assert.ok(!listed.stdout.includes(created.stdout.trim()), "a listing never shows the token");
  const [token] = JSON.parse(listed.stdout) as { id: string; name: string; user: string }[];
  assert.deepEqual([token?.name, token?.user], ["ci", "ops"]);
  assert.match((await ferry(["token", "revoke", token?.id ?? ""])).stdout, /revoked/);
  await assert.rejects(ferry(["token", "revoke", token?.id ?? ""]), /no token/);
  await ferry(["user", "remove", "bot"]);
});

test("ferry serve starts the API, makes the first admin, answers a token, and stops on SIGTERM", async () => {
  const serve = spawn(process.execPath, [cli, "serve", "-c", config], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, FERRY_ADMIN_PASSWORD: "first admin password" },
  });
  let errors = "";
  serve.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => serve.on("exit", (code) => resolve(code)));
  try {
    const url = await waitFor(
      "the server to listen",
      () => {
        if (serve.exitCode !== null) throw new Error(`ferry serve exited: ${errors}`);
        return /server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(errors)?.[1];
      },
      { detail: () => errors },
    );
    assert.equal((await fetch(`${url}/health`)).status, 200);
    const login = await fetch(`${url}/api/v1/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "admin", password: "first admin password" }),
    });
    assert.equal(login.status, 200);
    assert.doesNotMatch(errors, /setup\?token=/, "no setup link when FERRY_ADMIN_PASSWORD made the admin");

    // A token made by the CLI while the server runs works at once.
    const token = (
      await ferry(["token", "create", "live", "--user", "admin", "--role", "viewer"])
    ).stdout.trim();
    const me = await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await me.json()) as {
      user: { name: string; role: string };
      role: string;
      via: string;
      tokenId: string;
    };
    assert.deepEqual(
      [body.user.name, body.user.role, body.role, body.via, body.tokenId],
      ["admin", "admin", "viewer", "token", token.slice(6, 22)],
    );

    serve.kill("SIGTERM");
    assert.equal(await exited, 0, errors);
  } finally {
    if (serve.exitCode === null) serve.kill("SIGKILL");
  }
});
