import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Secret } from "../core/secret.ts";
import { brief, configError, parse, problemAt } from "./test-fixtures.ts";

describe("notify: in ferry.yaml", () => {
  it("is absent unless written", () => {
    assert.equal(parse("data_dir: ./d\n").notify, undefined);
  });

  it("takes channels of each type and rules, with their defaults", () => {
    const config = parse(
      [
        "notify:",
        "  dashboard_url: https://ferry.example.com/",
        "  channels:",
        "    hook: { type: webhook, url: https://hooks.example.com/x, secret: s3cret }",
        "    broker: { type: mqtt, url: mqtts://broker:8883, username: ferry, password: pw }",
        "    mail: { type: email, host: smtp.example.com, from: ferry@example.com, username: u, password: p }",
        "  rules:",
        "    - { on: [job.finished, job.failed], to: [owner, role:operator, user:ada, lab@example.com], via: [mail, hook] }",
        "    - { on: printer.offline, after: 5m, via: broker }",
      ].join("\n"),
    );
    const notify = config.notify;
    assert.ok(notify);
    assert.equal(notify.dashboardUrl, "https://ferry.example.com");
    const hook = notify.channels.get("hook");
    assert.ok(hook?.type === "webhook");
    assert.ok(hook.secret instanceof Secret);
    assert.equal(hook.secret.reveal(), "s3cret");
    assert.deepEqual([hook.timeoutS, hook.attempts], [10, 10]);
    const broker = notify.channels.get("broker");
    assert.ok(broker?.type === "mqtt");
    assert.deepEqual([broker.topicPrefix, broker.qos, broker.printerState], ["ferry", 1, true]);
    const mail = notify.channels.get("mail");
    assert.ok(mail?.type === "email");
    assert.deepEqual([mail.port, mail.secure], [587, false]);
    assert.deepEqual(notify.rules, [
      {
        index: 0,
        on: ["job.finished", "job.failed"],
        to: [
          { kind: "owner" },
          { kind: "role", role: "operator" },
          { kind: "user", name: "ada" },
          { kind: "address", address: "lab@example.com" },
        ],
        via: ["mail", "hook"],
        afterS: 0,
      },
      { index: 1, on: ["printer.offline"], to: [], via: ["broker"], afterS: 300 },
    ]);
  });

  it("names every problem at its field", () => {
    const error = configError(() =>
      parse(
        [
          "notify:",
          "  channels:",
          "    hook: { type: webhook, url: ftp://x }",
          "    pager: { type: sms, number: 1 }",
          "    mail: { type: email, host: smtp, from: f@x.y, username: u, colour: red }",
          "    broker: { type: mqtt, url: mqtt://b, qos: 3, ca_file: ./missing.pem }",
          "  rules:",
          "    - { on: job.done, via: hook }",
          "    - { on: job.failed, via: mail }",
          "    - { on: job.failed, to: 'role:boss', via: [hook, nowhere] }",
          "    - { on: job.failed, after: 1m, via: hook }",
          "  colour: red",
        ].join("\n"),
      ),
    );
    assert.match(problemAt(error.problems, "notify.channels.hook.url").message, /http:\/\/ or https:\/\//);
    assert.match(problemAt(error.problems, "notify.channels.pager.type").message, /webhook, mqtt or email/);
    assert.match(
      problemAt(error.problems, "notify.channels.mail.colour").message,
      /unknown key "colour"; known keys: type, host, port/,
    );
    assert.match(problemAt(error.problems, "notify.channels.broker.qos").message, /0, 1 or 2/);
    assert.match(problemAt(error.problems, "notify.rules[0].on[0]").message, /expected one of job.finished/);
    assert.match(problemAt(error.problems, "notify.rules[2].to[0]").message, /expected owner, role:viewer/);
    assert.match(
      problemAt(error.problems, "notify.colour").message,
      /known keys: dashboard_url, channels, rules/,
    );
    assert.equal(problemAt(error.problems, "notify.colour").line, 12);
    assert.equal(error.problems.length, 7, brief(error.problems).join("\n"));
  });

  it("checks what the rules say against the channels, once the shapes are right", () => {
    const error = configError(() =>
      parse(
        [
          "notify:",
          "  channels:",
          "    hook: { type: webhook, url: https://x.example }",
          "    mail: { type: email, host: smtp, from: f@x.y, username: u }",
          "    broker: { type: mqtt, url: mqtt://b, ca_file: ./missing.pem }",
          "  rules:",
          "    - { on: job.failed, via: mail }",
          "    - { on: job.failed, to: owner, via: [hook, nowhere] }",
          "    - { on: job.failed, after: 1m, via: hook }",
        ].join("\n"),
      ),
    );
    assert.deepEqual(brief(error.problems), [
      "4:61 notify.channels.mail.username: username and password go together",
      "5:51 notify.channels.broker.ca_file: /farm/missing.pem not found",
      '7:7 notify.rules[0].to: channel "mail" sends e-mail: say to whom (owner, role:NAME, user:NAME or an address)',
      '8:48 notify.rules[1].via[1]: unknown channel "nowhere"; channels: hook, mail, broker',
      "9:32 notify.rules[2].after: after applies to printer.offline and device.offline only",
    ]);
  });
});
