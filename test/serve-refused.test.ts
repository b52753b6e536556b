/**
 * A device that refuses Ferry's credentials is marked as needing attention, named in `ferry
 * status`, and not hammered: a write-only web form (which no probe can check) gets one upload
 * attempt per minute, not one every few seconds.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;

let dir: string;
let server: Server;
let posts = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-refused-"));
  await mkdir(join(dir, "logs"));
  await writeFile(join(dir, "logs", "flight.ulg"), "log bytes");
  server = createServer((req, res) => {
    posts++;
    req.resume();
    req.on("end", () => {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="logs"' }).end("wrong password");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await writeFile(
    join(dir, "ferry.yaml"),
    [
      "data_dir: ./data",
      "devices:",
      `  site: { type: http-post, url: "http://127.0.0.1:${port}/upload", username: ops, password: wrong }`,
      "syncs:",
      "  logs: { source: ./logs, targets: [site], mode: copy }",
      "",
    ].join("\n"),
  );
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test("a wrong password: attention, the device named, one attempt and then quiet", async () => {
  const serve = spawn(process.execPath, [cli, "serve", "-c", join(dir, "ferry.yaml")], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, FERRY_LOG_LEVEL: "info" },
  });
  let output = "";
  let errors = "";
  serve.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  serve.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  try {
    const deadline = Date.now() + 20_000;
    while (!/site needs attention/.test(output) && Date.now() < deadline) await sleep(50);
    assert.match(output, /site needs attention: .*site.*401/);
    // One format per stream: words, no JSON log lines among them.
    for (const line of (output + errors).split("\n")) assert.doesNotMatch(line, /^\{/);
    await sleep(8000);
    assert.equal(posts, 1, `one upload attempt while the device refuses us, not ${posts}`);
    const { stdout: status } = await promisify(execFile)(
      process.execPath,
      [cli, "status", "--json", "-c", join(dir, "ferry.yaml")],
      { cwd: dir },
    );
    const site = (
      JSON.parse(status) as { devices: { name: string; state: string; detail?: string }[] }
    ).devices.find((d) => d.name === "site");
    assert.equal(site?.state, "attention");
    assert.match(site.detail ?? "", /401|refused|password|credentials/i);
  } finally {
    serve.kill("SIGTERM");
    await new Promise((resolve) => serve.once("exit", resolve));
  }
});
