import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACTIVITIES, type Activity, type JobSnapshot, type PrinterSnapshot } from "../printers/driver.ts";
import type { Job } from "./jobs.ts";
import {
  MAX_START_RETRIES,
  decide,
  isThisPrint,
  SAME_START_MS,
  type Action,
  type ReconcileInput,
} from "./reconciler.ts";
import { canTransition, type JobState } from "./states.ts";

const NOW = 1_800_000_000_000;
const PATH = "ferry/benchy.gcode";
const STARTED = NOW - 600_000;

function job(state: JobState, more: Partial<Job> = {}): Job {
  return {
    id: "j-1",
    orderId: "o-1",
    file: { id: "f-1", name: "benchy.gcode", sha256: null },
    owner: "ann",
    priority: 0,
    model: null,
    tags: [],
    notes: null,
    state,
    printer: "mk4-a",
    printerJobId: "17",
    printerPath: PATH,
    origin: "user",
    takenOverBy: null,
    progress: null,
    remainingS: null,
    reason: null,
    uploadedAt: NOW - 700_000,
    startRequestedAt: NOW - 650_000,
    startedAt: STARTED,
    finishedAt: null,
    createdAt: NOW - 800_000,
    updatedAt: NOW - 600_000,
    ...more,
  };
}

const OURS: JobSnapshot = { id: "17", file: PATH, startedAt: STARTED, progress: 0.4, remainingS: 300 };
const OTHER: JobSnapshot = { id: "18", file: "by hand/vase.gcode", startedAt: NOW - 60_000, progress: 0.1 };

function snap(
  activity: Activity,
  shown?: JobSnapshot,
  connection: PrinterSnapshot["connection"] = "online",
): PrinterSnapshot {
  return {
    connection,
    activity: connection === "online" ? activity : "busy",
    rawState: activity.toUpperCase(),
    ...(shown && connection === "online" ? { job: shown } : {}),
    temperatures: [],
    observedAt: NOW,
  };
}

function input(
  job: Job | undefined,
  snapshot: PrinterSnapshot,
  more: Partial<ReconcileInput> = {},
): ReconcileInput {
  return {
    printer: "mk4-a",
    snapshot,
    job,
    recent: [],
    bedClear: true,
    autoClear: false,
    maintenance: null,
    upload: "none",
    uploadError: null,
    caseInsensitive: true,
    now: NOW,
    startGraceMs: 30_000,
    startRetries: 0,
    ...more,
  };
}

/** "wait", "start", "adopt:printing", "transition:printed" ... */
function kind(action: Action): string {
  if (action.type === "transition") return action.to;
  if (action.type === "adopt") return `adopt:${action.state}`;
  return action.type;
}

/** Every job a printer can hold, at each step that decides differently. */
const JOBS: Record<string, Job | undefined> = {
  none: undefined,
  scheduled: job("scheduled", {
    printerJobId: null,
    printerPath: null,
    uploadedAt: null,
    startRequestedAt: null,
    startedAt: null,
  }),
  "uploading (sending)": job("uploading", {
    printerJobId: null,
    uploadedAt: null,
    startRequestedAt: null,
    startedAt: null,
  }),
  "uploading (sent)": job("uploading", { printerJobId: null, startRequestedAt: null, startedAt: null }),
  // Asked just before the print began, long enough ago that a start not shown by now never came.
  "uploading (start asked)": job("uploading", {
    printerJobId: null,
    startRequestedAt: STARTED - 5_000,
    startedAt: null,
  }),
  printing: job("printing"),
  paused: job("paused"),
  printed: job("printed"),
  "cancelling (before start)": job("cancelling", {
    printerJobId: null,
    uploadedAt: null,
    startRequestedAt: null,
    startedAt: null,
  }),
  "cancelling (printing)": job("cancelling"),
  // Started at the printer by hand, adopted, taken over, then cancelled: Ferry never asked a start.
  "cancelling (adopted)": job("cancelling", {
    origin: "printer",
    takenOverBy: "olga",
    uploadedAt: null,
    startRequestedAt: null,
  }),
};
const SHOWN: Record<string, JobSnapshot | undefined> = { ours: OURS, other: OTHER, nothing: undefined };

/** A cancelled print that runs is stopped at the printer; anything else shown means it has ended. */
const STOP_AT_PRINTER: Record<Activity, [string, string, string]> = {
  idle: ["cancelled", "cancelled", "cancelled"],
  busy: ["wait", "cancelled", "cancelled"],
  printing: ["cancel", "cancelled", "cancelled"],
  paused: ["cancel", "cancelled", "cancelled"],
  finished: ["cancelled", "cancelled", "cancelled"],
  stopped: ["cancelled", "cancelled", "cancelled"],
  error: ["cancelled", "cancelled", "cancelled"],
  attention: ["cancel", "cancelled", "cancelled"],
};

/**
 * The expected action for every job × activity × what the printer shows, written out. Rows: one
 * per job; in each, per activity, what happens with our print / another print / no print shown.
 */
const EXPECTED: Record<string, Record<Activity, [string, string, string]>> = {
  none: {
    idle: ["wait", "wait", "wait"],
    busy: ["wait", "wait", "wait"],
    printing: ["adopt:printing", "adopt:printing", "wait"],
    paused: ["adopt:paused", "adopt:paused", "wait"],
    finished: ["adopt:printing", "adopt:printing", "wait"],
    stopped: ["adopt:printing", "adopt:printing", "wait"],
    error: ["wait", "wait", "wait"],
    attention: ["adopt:printing", "adopt:printing", "wait"],
  },
  scheduled: {
    idle: ["begin-upload", "begin-upload", "begin-upload"],
    busy: ["wait", "wait", "wait"],
    printing: ["queued", "queued", "queued"],
    paused: ["queued", "queued", "queued"],
    finished: ["begin-upload", "begin-upload", "begin-upload"],
    stopped: ["begin-upload", "begin-upload", "begin-upload"],
    error: ["queued", "queued", "queued"],
    attention: ["queued", "queued", "queued"],
  },
  "uploading (sending)": Object.fromEntries(
    ACTIVITIES.map((a) => [a, ["upload", "upload", "upload"]]),
  ) as Record<Activity, [string, string, string]>,
  "uploading (sent)": {
    idle: ["start", "start", "start"],
    busy: ["wait", "wait", "wait"],
    printing: ["queued", "queued", "queued"],
    paused: ["queued", "queued", "queued"],
    finished: ["start", "start", "start"],
    stopped: ["start", "start", "start"],
    error: ["wait", "wait", "wait"],
    attention: ["queued", "queued", "queued"],
  },
  "uploading (start asked)": {
    idle: ["retry-start", "retry-start", "retry-start"],
    busy: ["printing", "failed", "failed"],
    printing: ["printing", "failed", "failed"],
    paused: ["printing", "failed", "failed"],
    finished: ["printing", "retry-start", "retry-start"],
    stopped: ["printing", "retry-start", "retry-start"],
    error: ["printing", "failed", "failed"],
    attention: ["printing", "failed", "failed"],
  },
  printing: {
    idle: ["wait", "failed", "failed"],
    busy: ["wait", "failed", "wait"],
    printing: ["wait", "failed", "wait"],
    paused: ["paused", "failed", "wait"],
    finished: ["printed", "failed", "failed"],
    stopped: ["cancelled", "failed", "failed"],
    error: ["failed", "failed", "wait"],
    attention: ["paused", "failed", "wait"],
  },
  paused: {
    idle: ["wait", "failed", "failed"],
    busy: ["wait", "failed", "wait"],
    printing: ["printing", "failed", "wait"],
    paused: ["wait", "failed", "wait"],
    finished: ["printed", "failed", "failed"],
    stopped: ["cancelled", "failed", "failed"],
    error: ["failed", "failed", "wait"],
    attention: ["wait", "failed", "wait"],
  },
  printed: {
    idle: ["wait", "wait", "wait"],
    busy: ["wait", "wait", "wait"],
    printing: ["wait", "completed", "completed"],
    paused: ["wait", "completed", "completed"],
    finished: ["wait", "wait", "wait"],
    stopped: ["wait", "wait", "wait"],
    error: ["wait", "wait", "wait"],
    attention: ["wait", "completed", "completed"],
  },
  "cancelling (before start)": Object.fromEntries(
    ACTIVITIES.map((a) => [a, ["drop-upload", "drop-upload", "drop-upload"]]),
  ) as Record<Activity, [string, string, string]>,
  "cancelling (printing)": STOP_AT_PRINTER,
  "cancelling (adopted)": STOP_AT_PRINTER,
};

describe("reconciler", () => {
  it("decides one action for every job × printer activity × print shown, as written out", () => {
    const wrong: string[] = [];
    let cases = 0;
    for (const [name, held] of Object.entries(JOBS)) {
      for (const activity of ACTIVITIES) {
        const expected = EXPECTED[name]?.[activity];
        assert.ok(expected, `a row for ${name} / ${activity}`);
        Object.values(SHOWN).forEach((shown, i) => {
          cases++;
          const got = kind(decide(input(held, snap(activity, shown))));
          if (got !== expected[i])
            wrong.push(
              `${name}, ${activity}, shows ${Object.keys(SHOWN)[i] ?? "?"}: ${got}, expected ${expected[i] ?? "?"}`,
            );
        });
      }
    }
    assert.equal(cases, 11 * 8 * 3);
    assert.deepEqual(wrong, []);
  });

  it("never makes a transition the table forbids, never adopts beside a job, starts only a sent job on a clear bed", () => {
    for (const held of Object.values(JOBS))
      for (const activity of ACTIVITIES)
        for (const shown of Object.values(SHOWN))
          for (const connection of ["online", "offline", "auth_failed"] as const)
            for (const bedClear of [true, false]) {
              const action = decide(input(held, snap(activity, shown, connection), { bedClear }));
              const where = `${held?.state ?? "none"} ${connection} ${activity} bed ${bedClear}`;
              if (action.type === "transition") {
                assert.ok(
                  held && canTransition(held.state, action.to),
                  `${where}: ${held?.state} → ${action.to}`,
                );
              }
              if (action.type === "adopt") assert.equal(held, undefined, where);
              if (action.type === "start") {
                assert.ok(bedClear && connection === "online" && held?.uploadedAt !== null, where);
                assert.equal(held?.startRequestedAt, null, `${where}: a start is asked once`);
              }
              if (connection !== "online")
                assert.ok(
                  action.type === "wait" || (held?.state === "scheduled" && kind(action) === "queued"),
                  `${where}: an unreachable printer changes nothing (${kind(action)})`,
                );
            }
  });

  it("printer offline: a running job waits for it; a job not begun goes back to the queue", () => {
    assert.deepEqual(decide(input(job("printing"), snap("idle", undefined, "offline"))), {
      type: "wait",
      why: "mk4-a is offline",
    });
    const back = decide(input(JOBS.scheduled, snap("idle", undefined, "offline")));
    assert.equal(kind(back), "queued");
    assert.match(back.type === "transition" ? (back.reason ?? "") : "", /mk4-a is offline/);
  });

  it("a print cancelled at the printer is cancelled, by the printer", () => {
    assert.deepEqual(decide(input(job("printing"), snap("stopped", OURS))), {
      type: "transition",
      to: "cancelled",
      by: "printer",
      reason: "stopped at the printer",
    });
  });

  it("a print that finished while Ferry was down is printed, and waits for the bed", () => {
    const finished = decide(input(job("printing"), snap("finished", { ...OURS, progress: 1 })));
    assert.equal(kind(finished), "printed");
    assert.deepEqual(decide(input(job("printed"), snap("finished", OURS))), {
      type: "wait",
      why: "waiting for the bed to be marked clear",
    });
    assert.equal(
      kind(decide(input(job("printed"), snap("finished", OURS), { autoClear: true }))),
      "completed",
    );
  });

  it("a print the printer forgot (restarted, acknowledged) fails with the reason", () => {
    const gone = decide(input(job("printing"), snap("idle")));
    assert.equal(kind(gone), "failed");
    assert.match(gone.type === "transition" ? (gone.reason ?? "") : "", /no longer shows this print/);
  });

  it("a print started by hand is adopted with what the printer says of it; one Ferry knows is not", () => {
    assert.deepEqual(decide(input(undefined, snap("printing", OTHER))), {
      type: "adopt",
      state: "printing",
      job: { ...OTHER, file: OTHER.file },
    });
    const done = { ...OTHER, progress: 1 };
    assert.equal(kind(decide(input(undefined, snap("finished", done)))), "adopt:printing");
    const known = job("completed", {
      printerJobId: "18",
      printerPath: OTHER.file ?? "",
      startedAt: OTHER.startedAt ?? 0,
    });
    assert.equal(kind(decide(input(undefined, snap("finished", done), { recent: [known] }))), "wait");
  });

  it("a requested start: recorded when the printer shows it, waited for a while, asked again, else failed", () => {
    const asked = job("uploading", { printerJobId: null, startRequestedAt: NOW - 10_000, startedAt: null });
    const started = decide(input(asked, snap("printing", { ...OURS, startedAt: NOW - 5_000 })));
    assert.deepEqual(started, {
      type: "transition",
      to: "printing",
      by: "printer",
      reason: "the printer started it",
      set: { printerJobId: "17", startedAt: NOW - 5_000 },
    });
    assert.equal(kind(decide(input(asked, snap("idle"), { now: NOW + 19_000 }))), "wait");
    // At rest and not showing the job's file: the request never reached it; ask again, a few times.
    const again = decide(input(asked, snap("idle"), { now: NOW + 21_000 }));
    assert.deepEqual(again, {
      type: "retry-start",
      why: "mk4-a did not start ferry/benchy.gcode: it shows IDLE",
    });
    assert.equal(
      kind(decide(input(asked, snap("finished", OTHER), { now: NOW + 21_000, startRetries: 2 }))),
      "retry-start",
    );
    // Busy with something else: not at rest, so no second request.
    assert.equal(kind(decide(input(asked, snap("busy"), { now: NOW + 21_000 }))), "failed");
    const never = decide(input(asked, snap("idle"), { now: NOW + 21_000, startRetries: MAX_START_RETRIES }));
    assert.equal(kind(never), "failed");
    assert.match(
      never.type === "transition" ? (never.reason ?? "") : "",
      /did not start ferry\/benchy.gcode: it shows IDLE/,
    );
  });

  it("a sent job starts only on a bed known to be clear", () => {
    const sent = JOBS["uploading (sent)"];
    assert.deepEqual(decide(input(sent, snap("idle"), { bedClear: false })), {
      type: "wait",
      why: "the bed is not marked clear",
    });
    assert.equal(kind(decide(input(sent, snap("finished", OURS), { bedClear: true }))), "start");
  });

  it("an upload: queued again when missing, waited for while queued or running, the job failed when it died", () => {
    const sending = JOBS["uploading (sending)"];
    assert.equal(kind(decide(input(sending, snap("idle"), { upload: "queued" }))), "wait");
    assert.equal(kind(decide(input(sending, snap("idle"), { upload: "running" }))), "wait");
    const dead = decide(
      input(sending, snap("idle"), { upload: "dead", uploadError: "NO_SPACE: the USB stick is full" }),
    );
    assert.deepEqual(dead, {
      type: "transition",
      to: "failed",
      by: "ferry",
      reason: "the upload failed: NO_SPACE: the USB stick is full",
    });
  });

  it("cancelling: a running upload is let stop, a printing job is stopped at the printer", () => {
    const early = JOBS["cancelling (before start)"];
    assert.equal(kind(decide(input(early, snap("idle"), { upload: "running" }))), "wait");
    assert.equal(kind(decide(input(early, snap("idle"), { upload: "queued" }))), "drop-upload");
    assert.equal(kind(decide(input(JOBS["cancelling (printing)"], snap("printing", OURS)))), "cancel");
  });

  it("maintenance sends a scheduled job back to the queue, naming the reason", () => {
    const back = decide(input(JOBS.scheduled, snap("idle"), { maintenance: "nozzle swap" }));
    assert.deepEqual(back, {
      type: "transition",
      to: "queued",
      by: "ferry",
      reason: "mk4-a went into maintenance (nozzle swap)",
    });
  });

  it("tells its print by id, else by file and start time; FAT names compare without case", () => {
    const printing = job("printing");
    assert.ok(isThisPrint(printing, { ...OURS, file: "FERRY/Benchy.GCODE" }, true));
    assert.ok(!isThisPrint(printing, { ...OURS, file: "FERRY/Benchy.GCODE" }, false));
    assert.ok(!isThisPrint(printing, { ...OURS, id: "99" }, true), "same file, another job id");
    const noIds = job("printing", { printerJobId: null });
    const { id: _id, ...octo } = OURS;
    assert.ok(isThisPrint(noIds, { ...octo, startedAt: STARTED + 3_000 }, false));
    assert.ok(
      !isThisPrint(noIds, { ...octo, startedAt: STARTED + SAME_START_MS + 1 }, false),
      "the same file printed again later",
    );
  });
});
