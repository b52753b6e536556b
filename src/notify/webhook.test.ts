/** The webhook task against a local HTTP server: signed as documented; which answers are retried. */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { after, before, describe, test } from "node:test";
import { parseConfig, type WebhookChannel } from "../config/index.ts";
import { FakeClock } from "../core/clock.ts";
import { FerryError } from "../core/errors.ts";
import { deviceKinds } from "../devices/devices.ts";
import type { Task } from "../tasks/queue.ts";
import type { RunContext } from "../tasks/runner.ts";
import { signature, webhookHandler, type WebhookPayload } from "./webhook.ts";

describe("webhook tasks", () => {
  let status = 200;
  let seen: { headers: IncomingHttpHeaders; body: string } | undefined;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      seen = { headers: req.headers, body };
      res.statusCode = status;
      res.end(status === 200 ? "" : "nope");
    });
  });
  let channels: Map<string, WebhookChannel>;
  const clock = new FakeClock(1_765_000_000_000);

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    assert.ok(typeof address === "object" && address);
    const config = parseConfig(
      `notify:
  channels:
    hook: { type: webhook, url: "http://127.0.0.1:${address.port}/in", secret: "\${SECRET}", timeout: 2s }
    closed: { type: webhook, url: "http://127.0.0.1:1/in" }
`,
      "/farm/ferry.yaml",
      { deviceKinds, env: { SECRET: "hush" } },
    );
    channels = new Map(
      [...(config.notify?.channels.values() ?? [])]
        .filter((c): c is WebhookChannel => c.type === "webhook")
        .map((c) => [c.name, c]),
    );
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const run = (channel: string) => {
    const payload: WebhookPayload = {
      channel,
      delivery: "ev-1",
      event: "job.finished",
      body: '{"event":"job.finished"}',
    };
    const task = { id: "t1", payload } as Task<WebhookPayload, never>;
    const context = { signal: new AbortController().signal, checkpoint: null } as RunContext<never>;
    return webhookHandler(channels, clock).run(task, context);
  };

  test("posts the body, signed over the timestamp and the body", async () => {
    status = 200;
    assert.deepEqual(await run("hook"), { bytes: 24 });
    assert.ok(seen);
    assert.equal(seen.body, '{"event":"job.finished"}');
    assert.equal(seen.headers["x-ferry-timestamp"], "1765000000");
    assert.equal(seen.headers["x-ferry-delivery"], "ev-1");
    assert.equal(seen.headers["content-type"], "application/json");
    const expected = createHmac("sha256", "hush").update(`1765000000.${seen.body}`).digest("hex");
    assert.equal(seen.headers["x-ferry-signature"], `sha256=${expected}`);
    assert.equal(signature("hush", 1765000000, seen.body), `sha256=${expected}`);
  });

  test("5xx, 429 and no answer are retried; other refusals end the task", async () => {
    for (const [code, retryable] of [
      [503, true],
      [429, true],
      [404, false],
      [401, false],
    ] as const) {
      status = code;
      await assert.rejects(run("hook"), (error: unknown) => {
        assert.ok(error instanceof FerryError);
        assert.equal(error.retryable, retryable, `${code}`);
        assert.match(error.message, new RegExp(`answered ${code}: nope`));
        return true;
      });
    }
    await assert.rejects(run("closed"), (error: unknown) => error instanceof FerryError && error.retryable);
  });

  test("a channel no longer configured: skipped, not failed", async () => {
    assert.deepEqual(await run("gone"), {
      bytes: 0,
      skipped: 'notify.channels has no webhook "gone" any more',
    });
  });
});
