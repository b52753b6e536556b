/**
 * The e-mail task against a real SMTP server in its own process (STARTTLS, AUTH): a message goes
 * through; a wrong password ends the task; a server that is not there is tried again.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { simpleParser } from "mailparser";
import { freePort, testOptions, tlsCertificate, Unavailable } from "../../test/servers/common.ts";
import { startSmtpSink, type SmtpSink } from "../../test/support/smtp-sink.ts";
import { parseConfig, type EmailChannel } from "../config/index.ts";
import { FerryError } from "../core/errors.ts";
import { deviceKinds } from "../devices/devices.ts";
import type { Task } from "../tasks/queue.ts";
import type { RunContext } from "../tasks/runner.ts";
import { Mailer, type EmailPayload } from "./email.ts";

let unavailable: string | undefined;
const dir = await mkdtemp(join(tmpdir(), "ferry-email-"));
let tls: { cert: string; key: string } | undefined;
try {
  tls = await tlsCertificate(dir);
} catch (error) {
  if (!(error instanceof Unavailable)) throw error;
  unavailable = error.message;
}

describe("e-mail tasks", () => {
  let sink: SmtpSink | undefined;
  let closedPort: number;
  after(async () => {
    await sink?.close();
    await rm(dir, { recursive: true, force: true });
  });
  before(async () => {
    if (!tls) return;
    sink = await startSmtpSink({ tls, username: "ferry", password: "right" });
    closedPort = await freePort();
  });

  const mailer = (password: string, port = sink?.port) => {
    assert.ok(tls && port !== undefined);
    const config = parseConfig(
      `notify:
  channels:
    mail: { type: email, host: 127.0.0.1, port: ${port}, username: ferry, password: "${password}", ca_file: ${tls.cert}, from: "Ferry <ferry@lab.example>", timeout: 5s }
`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const channel = config.notify?.channels.get("mail") as EmailChannel;
    return new Mailer(new Map([["mail", channel]]));
  };
  const send = (m: Mailer) => {
    const payload: EmailPayload = {
      channel: "mail",
      delivery: "ev-1",
      event: "job.failed",
      to: "ada@lab.example",
      subject: "Failed: cube.gcode on mk4-a",
      text: "thermal runaway\n",
    };
    const task = { id: "t1", payload } as Task<EmailPayload, never>;
    return m
      .handler()
      .run(task, { signal: new AbortController().signal, checkpoint: null } as RunContext<never>);
  };

  test("a message goes through STARTTLS and AUTH", testOptions(unavailable), async () => {
    const m = mailer("right");
    try {
      await send(m);
    } finally {
      m.close();
    }
    const [received] = sink?.messages ?? [];
    assert.ok(received);
    assert.deepEqual([received.from, received.to], ["ferry@lab.example", ["ada@lab.example"]]);
    const parsed = await simpleParser(received.raw);
    assert.equal(parsed.subject, "Failed: cube.gcode on mk4-a");
    assert.equal(parsed.text, "thermal runaway\n");
    assert.equal(parsed.headers.get("x-ferry-event"), "job.failed");
  });

  test("a wrong password ends the task; no server is tried again", testOptions(unavailable), async () => {
    const wrong = mailer("wrong");
    try {
      await assert.rejects(send(wrong), (error: unknown) => {
        assert.ok(error instanceof FerryError);
        assert.equal(error.retryable, false);
        assert.match(error.message, /^e-mail mail \(127\.0\.0\.1:\d+\): .*535/);
        return true;
      });
    } finally {
      wrong.close();
    }
    const away = mailer("right", closedPort);
    try {
      await assert.rejects(send(away), (error: unknown) => error instanceof FerryError && error.retryable);
    } finally {
      away.close();
    }
    assert.equal(sink?.messages.length, 1, "only the first test's message arrived");
  });
});
