import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { schedule, type SchedulerJob, type SchedulerPrinter } from "./scheduler.ts";

const printer = (name: string, more: Partial<SchedulerPrinter> = {}): SchedulerPrinter => ({
  name,
  model: "MK4",
  tags: ["PLA"],
  online: true,
  activity: "idle",
  job: null,
  bedClear: true,
  maintenance: null,
  heating: false,
  ...more,
});

let created = 1_000;
const job = (id: string, more: Partial<SchedulerJob> = {}): SchedulerJob => ({
  id,
  priority: 0,
  createdAt: created++,
  model: null,
  tags: [],
  ...more,
});

/** The plan, with each waiting job's full reason. */
const plan = (jobs: SchedulerJob[], printers: SchedulerPrinter[], maxHeating = 10) => {
  const { assignments, waiting } = schedule(jobs, printers, { maxHeating });
  return { assignments, waiting: new Map([...waiting].map(([id, why]) => [id, why.reason])) };
};

describe("scheduler", () => {
  it("gives jobs by priority, then age, to idle printers", () => {
    const old = job("old");
    const young = job("young");
    const urgent = job("urgent", { priority: 5 });
    const result = plan([young, old, urgent], [printer("a"), printer("b")]);
    assert.deepEqual(result.assignments, [
      { job: "urgent", printer: "a" },
      { job: "old", printer: "b" },
    ]);
    assert.deepEqual(
      [...result.waiting],
      [["young", "no idle printer: a went to a job ahead of it, b went to a job ahead of it"]],
    );
  });

  it("matches model and every tag, case-insensitively; explains a job nothing could take", () => {
    const printers = [
      printer("mk4-a", { tags: ["PLA", "PETG"] }),
      printer("mini", { model: "MINI", tags: ["pla"] }),
      printer("xl", { model: "XL", tags: ["PLA", "PETG", "0.6mm"] }),
    ];
    const result = plan(
      [
        job("petg", { tags: ["petg"] }),
        job("mini", { model: "mini" }),
        job("wide", { tags: ["PETG", "0.6MM"] }),
        job("abs", { tags: ["ABS"] }),
        job("mk3", { model: "MK3" }),
      ],
      printers,
    );
    assert.deepEqual(result.assignments, [
      // mk4-a has fewer tags than xl: the versatile printer stays free.
      { job: "petg", printer: "mk4-a" },
      { job: "mini", printer: "mini" },
      { job: "wide", printer: "xl" },
    ]);
    assert.equal(result.waiting.get("abs"), "no printer with tag ABS in the farm");
    assert.equal(result.waiting.get("mk3"), "no MK3 printer in the farm");
  });

  it("leaves printers alone that are offline, busy, in maintenance, unseen, or whose bed is not clear, and says so", () => {
    const printers = [
      printer("a", { online: false }),
      printer("b", { activity: "printing", job: "printing" }),
      printer("c", { maintenance: "nozzle swap" }),
      printer("d", { bedClear: false, activity: "finished" }),
      printer("e", { activity: "error" }),
      printer("f", { activity: "attention" }),
      printer("g", { activity: null }),
      printer("h", { tags: ["PETG"] }),
    ];
    const result = plan([job("pla", { tags: ["PLA"] })], printers);
    assert.deepEqual(result.assignments, []);
    assert.equal(
      result.waiting.get("pla"),
      "no idle printer with tag PLA: a offline, b has a job (printing), c in maintenance (nozzle swap), d bed not marked clear, e error, and 2 more",
    );
  });

  it("starts on a printer showing its last print finished or stopped once its bed is clear", () => {
    const result = plan(
      [job("one"), job("two")],
      [printer("done", { activity: "finished" }), printer("stopped", { activity: "stopped" })],
    );
    assert.equal(result.assignments.length, 2);
  });

  it("holds a printer's job by its state, whatever the printer shows", () => {
    const result = plan([job("one")], [printer("a", { job: "printed", activity: "idle" })]);
    assert.deepEqual(result.assignments, []);
    assert.equal(result.waiting.get("one"), "no idle printer: a has a job (printed)");
  });

  it("heats at most max_heating printers at once, counting those heating and those about to", () => {
    const printers = [
      printer("hot", { activity: "printing", job: "printing", heating: true }),
      printer("starting", { job: "uploading" }),
      printer("warm", { activity: "printing", job: "printing", heating: false }),
      printer("a"),
      printer("b"),
      printer("c"),
    ];
    const jobs = [job("one"), job("two"), job("three")];
    const result = plan(jobs, printers, 3);
    assert.deepEqual(result.assignments, [{ job: "one", printer: "a" }]);
    assert.equal(
      result.waiting.get("two"),
      "waiting for its turn to start: 3 printers are heating (max_heating 3)",
    );
    assert.equal(
      result.waiting.get("three"),
      "waiting for its turn to start: 3 printers are heating (max_heating 3)",
    );
    // Once the hot one reaches its temperature, one more may start.
    const later = plan(
      jobs.slice(1),
      printers.map((p) =>
        p.name === "hot" ? { ...p, heating: false } : p.name === "a" ? { ...p, job: "scheduled" } : p,
      ),
      3,
    );
    assert.deepEqual(later.assignments, [{ job: "two", printer: "b" }]);
  });

  it("gives the heating turn to the job ahead, not to one that happens to fit", () => {
    const result = plan(
      [job("petg", { tags: ["PETG"], priority: 2 }), job("pla", { tags: ["PLA"] })],
      [printer("a", { tags: ["PLA"] }), printer("b", { tags: ["PETG"] })],
      1,
    );
    assert.deepEqual(result.assignments, [{ job: "petg", printer: "b" }]);
    assert.match(result.waiting.get("pla") ?? "", /^waiting for its turn to start: 1 printer is heating/);
  });

  it("a job that finds no printer does not hold up a lower one that does", () => {
    const result = plan(
      [job("petg", { tags: ["PETG"], priority: 9 }), job("pla", { tags: ["PLA"] })],
      [
        printer("a", { tags: ["PLA"] }),
        printer("b", { tags: ["PETG"], activity: "printing", job: "printing" }),
      ],
    );
    assert.deepEqual(result.assignments, [{ job: "pla", printer: "a" }]);
    assert.equal(result.waiting.get("petg"), "no idle printer with tag PETG: b has a job (printing)");
  });

  it("gives a reason's cause without the printers' details, shared by the jobs of a kind", () => {
    // One tags list, as Jobs.queued gives the jobs of a kind.
    const tags = ["PLA"];
    const jobs = [job("one", { tags }), job("two", { tags })];
    const busy = schedule(jobs, [printer("a", { activity: "printing" }), printer("b", { bedClear: false })], {
      maxHeating: 10,
    });
    const one = busy.waiting.get("one");
    assert.deepEqual(one, {
      reason: "no idle printer with tag PLA: a printing, b bed not marked clear",
      cause: "no idle printer with tag PLA",
    });
    assert.equal(busy.waiting.get("two"), one);
    // Another printer busy: the details change, the cause does not.
    const later = schedule(
      jobs,
      [printer("a", { bedClear: false }), printer("b", { activity: "printing" })],
      {
        maxHeating: 10,
      },
    );
    assert.equal(
      later.waiting.get("one")?.reason,
      "no idle printer with tag PLA: a bed not marked clear, b printing",
    );
    assert.equal(later.waiting.get("one")?.cause, "no idle printer with tag PLA");
    const heating = schedule(jobs, [printer("a", { heating: true }), printer("b")], { maxHeating: 1 });
    assert.deepEqual(heating.waiting.get("one"), {
      reason: "waiting for its turn to start: 1 printer is heating (max_heating 1)",
      cause: "waiting for its turn to start",
    });
  });

  it("names an empty farm", () => {
    assert.equal(plan([job("x")], []).waiting.get("x"), "no printer is in the farm");
  });
});
