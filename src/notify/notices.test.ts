import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compose, formatTime, linkOf, render, type Notice } from "./notices.ts";

const notice: Notice = {
  id: "ev-1",
  event: "job.waiting_bed_clear",
  at: Date.UTC(2026, 11, 6, 7, 50, 12),
  node: "farm-pc:/srv/ferry",
  job: { id: "j 1", file: "hook.gcode", owner: "maker", state: "printed" },
  printer: "mk4-a",
  message: "hook.gcode is done on mk4-a: take it off and mark the bed clear",
};

describe("notices", () => {
  test("templates name the job, the printer, the time and the link; unknown names stay", () => {
    const link = linkOf(notice, "https://ferry.example.com");
    assert.equal(link, "https://ferry.example.com/jobs/j%201");
    assert.deepEqual(
      compose(notice, link, {
        subject: "{{ file }} on {{printer}}",
        text: "{{owner}}: {{time}} {{link}} {{colour}}",
      }),
      {
        subject: "hook.gcode on mk4-a",
        text: "maker: 2026-12-06 07:50:12 UTC https://ferry.example.com/jobs/j%201 {{colour}}",
      },
    );
  });

  test("the default text leaves out what a notice is not about, and has no link without a dashboard", () => {
    const printer: Notice = {
      id: "ev-2",
      event: "printer.error",
      at: notice.at,
      node: "n",
      printer: "mk4-a",
      message: "heater fault",
    };
    assert.equal(linkOf(printer, undefined), undefined);
    assert.deepEqual(compose(printer, undefined, {}), {
      subject: "mk4-a needs attention",
      text: "heater fault\n\nPrinter: mk4-a\nTime: 2026-12-06 07:50:12 UTC\n",
    });
    assert.equal(render("{{a}}{{b}}", { a: "1" }), "1{{b}}");
    assert.equal(formatTime(0), "1970-01-01 00:00:00 UTC");
  });
});
