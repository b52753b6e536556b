import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { pino } from "pino";
import { LOG_REDACTION } from "./log.ts";

test("secrets in log entries are censored: headers, passwords, tokens", () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = pino({ base: null, redact: LOG_REDACTION }, sink);
  logger.warn(
    {
      req: {
        method: "POST",
        headers: { authorization: "Bearer ferry_abc", cookie: "ferry_session=s3ss10n" },
      },
      res: { headers: { "set-cookie": "ferry_session=n3w" } },
      body: { name: "ada", password: "hunter2-hunter2" },
      token: "ferry_top",
    },
    "a request",
  );
  const text = lines.join("");
  for (const secret of ["ferry_abc", "s3ss10n", "n3w", "hunter2", "ferry_top"])
    assert.ok(!text.includes(secret), `${secret} in ${text}`);
  const entry = JSON.parse(text) as { req: { method: string }; body: { name: string; password: string } };
  assert.equal(entry.req.method, "POST", "the rest is kept");
  assert.equal(entry.body.name, "ada");
  assert.equal(entry.body.password, "[redacted]");
});
