/**
 * The print farm end to end, in process: the app as `ferry serve` builds it, over a PrusaLink (MK4),
 * an OctoPrint and a Moonraker (Klipper) simulator whose printer time runs hundreds of times faster
 * than the clock.
 * Jobs go through approval, scheduling, upload, printing, printed, bed clear and completed; a job
 * is cancelled while it prints; one is paused and resumed on the Klipper printer; and the app is stopped mid-print and a new one started over the
 * same store (as after a kill -9 and a restart): the print goes on, or is found finished, and
 * nothing is started twice.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp, type App, type AppEvents } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import type { Envelope } from "../src/core/events.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import type { Job, JobFile } from "../src/farm/jobs.ts";
import type { JobFiles } from "../src/farm/upload.ts";
import { MoonrakerSim } from "../src/sim/moonraker/index.ts";
import { OctoPrintSim } from "../src/sim/octoprint/index.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { localAdapter } from "../src/storage/local/local.ts";
import { folderJobFiles } from "./support/farm-files.ts";
import { waitFor } from "./support/wait.ts";
import { estimatedGcode } from "./support/gcode.ts";

const PASSWORD = "farm-e2e";
const KEY = "farm-e2e-key";
/** Printer time runs this many times faster: a 10-minute print takes 1 s. */
const SPEED = 600;

describe("farm end to end (PrusaLink, OctoPrint and Moonraker simulators)", { timeout: 240_000 }, () => {
  let dir: string;
  let mk4: PrusaLinkSim;
  let octo: OctoPrintSim;
  let klip: MoonrakerSim;
  let app: App | undefined;
  const events: Envelope<AppEvents>[] = [];
  let files: JobFiles;
  const file = (id: string): JobFile & { id: string } => ({ id, name: id, sha256: null });

  const config = () =>
    parseConfig(
      `devices:
  mk4-a: { type: prusalink, url: "${mk4.url}", password: "${PASSWORD}", farm: true, model: MK4, tags: [PLA, PETG] }
  octo-1: { type: octoprint, url: "${octo.url}", api_key: "${KEY}", farm: true, auto_clear: true, tags: [PLA] }
  klip-1: { type: moonraker, url: "${klip.url}", farm: true, model: Voron, tags: [ABS] }
farm:
  approval: [user]
  max_heating: 4
  interval: 100ms
`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );

  async function startApp(): Promise<App> {
    const started = await createApp(config(), { logger: silentLogger, jobFiles: files });
    started.bus.onAny((event) => events.push(event));
    await started.start();
    app = started;
    return started;
  }

  async function stopApp(): Promise<void> {
    await app?.stop();
    app = undefined;
  }

  const farm = () => {
    assert.ok(app, "the app runs");
    return app.farm;
  };

  async function state(id: string, wanted: Job["state"], timeoutMs = 60_000): Promise<Job> {
    return waitFor(
      `job ${id} to be ${wanted}`,
      async () => {
        const job = await farm().get(id);
        return job.state === wanted ? job : undefined;
      },
      {
        timeoutMs,
        detail: async () => {
          const job = await farm().get(id);
          return `it is ${job.state} (${job.reason ?? "no reason"}); printers: ${JSON.stringify(
            (await farm().printers()).map((p) => [p.name, p.activity, p.waiting, p.lastError]),
          )}; why: ${farm().why(id) ?? "-"}`;
        },
      },
    );
  }

  const historyOf = async (id: string) => (await farm().history(id)).map((h) => `${h.from ?? "-"}→${h.to}`);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-farm-e2e-"));
    const library = join(dir, "library");
    await mkdir(library);
    await writeFile(join(library, "petg-clip.gcode"), estimatedGcode(10, "petg clip"));
    await writeFile(join(library, "pla-hook.gcode"), estimatedGcode(10, "pla hook"));
    await writeFile(join(library, "long-vase.gcode"), estimatedGcode(600, "a ten-hour vase"));
    await writeFile(join(library, "abs-bracket.gcode"), estimatedGcode(600, "an ABS bracket"));
    const adapter = localAdapter.create(
      { path: library },
      { name: "library", logger: silentLogger, baseDir: dir },
    );
    files = folderJobFiles(adapter);
    mk4 = await PrusaLinkSim.start({ password: PASSWORD, speed: SPEED });
    octo = await OctoPrintSim.start({ apiKey: KEY, speed: SPEED });
    klip = await MoonrakerSim.start({ speed: SPEED });
    await startApp();
  });

  after(async () => {
    await stopApp();
    await mk4.close();
    await octo.close();
    await klip.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("approval → scheduling → upload → printing → printed → bed clear → completed; auto_clear completes at once", async () => {
    // No bed is known to be clear yet: nothing starts, and the farm says why.
    const [petg] = await farm().submit({
      file: file("petg-clip.gcode"),
      owner: "ann",
      role: "user",
      tags: ["PETG"],
    });
    assert.ok(petg);
    assert.equal(petg.state, "pending_approval", "a user's job waits for approval");
    await farm().approve(petg.id, "olga");
    await waitFor("the farm to say the job waits for mk4-a's bed", () =>
      farm().why(petg.id)?.startsWith("no idle printer with tag PETG: mk4-a bed not marked clear"),
    );

    await farm().markBedClear("mk4-a", "olga");
    await farm().markBedClear("octo-1", "olga");
    const [pla] = await farm().submit({
      file: file("pla-hook.gcode"),
      owner: "olga",
      role: "operator",
      tags: ["pla"],
    });
    assert.ok(pla);
    assert.equal(pla.state, "queued", "an operator's job needs no approval");

    const printed = await state(petg.id, "printed");
    assert.equal(printed.printer, "mk4-a");
    assert.equal(printed.progress, 1);
    const waiting = events.find((e) => e.type === "printer.waiting_bed_clear");
    assert.deepEqual(waiting?.payload, { printer: "mk4-a", job: petg.id, file: "petg-clip.gcode" });
    // The file goes to the farm's folder under a name of this attempt (see printerPathOf).
    assert.match(printed.printerPath ?? "", /^ferry\/petg-clip\.[0-9a-z]+\.gcode$/);
    assert.deepEqual(
      mk4.files().find((f) => f.path === printed.printerPath)?.size,
      estimatedGcode(10, "petg clip").length,
    );

    // octo-1 has the fewest extra tags for PLA and clears its own bed.
    const done = await state(pla.id, "completed");
    assert.equal(done.printer, "octo-1");
    assert.deepEqual(await historyOf(pla.id), [
      "-→queued",
      "queued→scheduled",
      "scheduled→uploading",
      "uploading→printing",
      "printing→printed",
      "printed→completed",
    ]);

    // The bed of mk4-a still holds the clip: nothing more starts there until it is marked clear.
    assert.equal((await farm().printer("mk4-a")).bedClear, false);
    await farm().markBedClear("mk4-a", "olga");
    const completed = await farm().get(petg.id);
    assert.equal(completed.state, "completed");
    const history = await farm().history(petg.id);
    assert.deepEqual(
      history.map((h) => [h.from, h.to, h.actor]),
      [
        [null, "pending_approval", "ann"],
        ["pending_approval", "queued", "olga"],
        ["queued", "scheduled", "scheduler"],
        ["scheduled", "uploading", history[3]?.actor],
        ["uploading", "printing", "printer mk4-a"],
        ["printing", "printed", "printer mk4-a"],
        ["printed", "completed", "olga"],
      ],
    );
    assert.match(history[3]?.actor ?? "", /^ferry@/);
    assert.equal(mk4.printer.job?.id, 1, "one print started on mk4-a");
  });

  test("a Klipper printer (Moonraker) prints a job: paused and resumed from Ferry, printed, bed clear, completed", async () => {
    await farm().markBedClear("klip-1", "olga");
    const [bracket] = await farm().submit({
      file: file("abs-bracket.gcode"),
      owner: "olga",
      role: "operator",
      model: "voron",
      tags: ["ABS"],
    });
    assert.ok(bracket);
    const printing = await state(bracket.id, "printing");
    assert.equal(printing.printer, "klip-1");
    assert.deepEqual(
      klip.files().find((f) => f.path === printing.printerPath)?.size,
      estimatedGcode(600, "an ABS bracket").length,
    );
    await farm().pause(bracket.id, "olga");
    await state(bracket.id, "paused");
    assert.equal(klip.state(), "paused", "Klipper paused the print");
    await farm().resume(bracket.id, "olga");
    await state(bracket.id, "printing");
    klip.setSpeed(SPEED * 1000);
    const printed = await state(bracket.id, "printed");
    assert.equal(printed.progress, 1);
    klip.setSpeed(SPEED);
    await farm().markBedClear("klip-1", "olga");
    assert.deepEqual(await historyOf(bracket.id), [
      "-→queued",
      "queued→scheduled",
      "scheduled→uploading",
      "uploading→printing",
      "printing→paused",
      "paused→printing",
      "printing→printed",
      "printed→completed",
    ]);
    const klipJob = () => klip.printer.job;
    assert.equal(`ferry/${klipJob()?.file.name ?? ""}`, printing.printerPath);
    assert.equal(klipJob()?.id, 1, "Klipper printed the file Ferry sent, once");

    // Someone starts the same file again at KlipperScreen: a print of its own, adopted and watched.
    assert.ok(printing.printerPath);
    klip.startPrint(printing.printerPath);
    const adopted = await waitFor("the print started at klip-1 to be adopted", async () =>
      (await farm().list({ printer: "klip-1", origin: "printer" })).find((j) => j.state === "printing"),
    );
    assert.equal(adopted.printerPath, printing.printerPath);
    await assert.rejects(farm().cancel(adopted.id, "olga"), /an operator must take it over/);
    await farm().takeOver(adopted.id, "olga");
    await farm().cancel(adopted.id, "olga", "not ours");
    await state(adopted.id, "cancelled");
    assert.equal(klip.state(), "cancelled", "Klipper cancelled it");
    await assert.rejects(farm().requeue(adopted.id, "olga"), /Ferry has no file to print it again/);
    assert.equal(klipJob()?.id, 2);
    await farm().markBedClear("klip-1", "olga");
  });

  test("a job cancelled while it prints is stopped at the printer", async () => {
    const [vase] = await farm().submit({
      file: file("long-vase.gcode"),
      owner: "olga",
      role: "operator",
      model: "MK4",
    });
    assert.ok(vase);
    const printing = await state(vase.id, "printing");
    assert.equal(printing.printer, "mk4-a");
    await assert.rejects(
      farm().reprioritize(vase.id, 3, "olga"),
      /job .* is printing; only a pending or queued job/,
    );
    await farm().cancel(vase.id, "olga", "wrong colour");
    const cancelled = await state(vase.id, "cancelled");
    assert.equal(mk4.state(), "STOPPED", "the printer stopped it");
    assert.deepEqual((await historyOf(vase.id)).slice(-3), [
      "uploading→printing",
      "printing→cancelling",
      "cancelling→cancelled",
    ]);
    assert.equal((await farm().history(vase.id)).at(-2)?.reason, "wrong colour");
    assert.equal(cancelled.printer, "mk4-a");
    await assert.rejects(farm().cancel(vase.id, "olga"), /is cancelled; it cannot become cancelling/);
    // A stopped print left its start on the bed.
    assert.equal((await farm().printer("mk4-a")).bedClear, false);
    await farm().markBedClear("mk4-a", "olga");
  });

  test("a failed job is queued again by an operator and printed from the start", async () => {
    const [vase] = await farm().submit({
      file: file("long-vase.gcode"),
      owner: "olga",
      role: "operator",
      model: "MK4",
    });
    assert.ok(vase);
    await state(vase.id, "printing");
    const firstPrint = mk4.printer.job?.id ?? 0;
    mk4.fail("thermal runaway");
    const failed = await state(vase.id, "failed");
    assert.match(failed.reason ?? "", /the printer reports an error/);
    await farm().requeue(vase.id, "olga");
    await assert.rejects(farm().requeue(vase.id, "olga"), /is queued, not failed/);
    const queued = await farm().get(vase.id);
    assert.equal(queued.printer, null, "nothing of its printer stays with it");
    assert.equal(queued.startedAt, null);
    assert.equal(queued.finishedAt, null);
    const requeued = (await farm().history(vase.id)).at(-1);
    assert.deepEqual(
      [requeued?.from, requeued?.to, requeued?.actor, requeued?.reason],
      ["failed", "queued", "olga", "requeued"],
    );

    // The printer is fixed and its bed cleared: the job prints again, as a new print.
    mk4.setState("IDLE");
    await farm().markBedClear("mk4-a", "olga");
    await state(vase.id, "printing");
    assert.equal(mk4.printer.job?.id, firstPrint + 1, "one new print");
    mk4.setSpeed(SPEED * 1000);
    await state(vase.id, "printed");
    mk4.setSpeed(SPEED);
    assert.deepEqual((await historyOf(vase.id)).slice(-6), [
      "printing→failed",
      "failed→queued",
      "queued→scheduled",
      "scheduled→uploading",
      "uploading→printing",
      "printing→printed",
    ]);
    await farm().markBedClear("mk4-a", "olga");
  });

  test("stopped mid-print and started again over the same store: the print goes on, nothing starts twice", async () => {
    const [vase] = await farm().submit({
      file: file("long-vase.gcode"),
      owner: "olga",
      role: "operator",
      tags: ["PETG"],
    });
    assert.ok(vase);
    await state(vase.id, "printing");
    const printerJob = mk4.printer.job?.id;
    // As a kill -9 would (the store keeps what it had; the workers and their loops are gone).
    await stopApp();
    await startApp();
    const after = await waitFor("the new app's worker to follow the print", async () => {
      const view = await farm().printer("mk4-a");
      return view.activity === "printing" && view.job?.id === vase.id ? view : undefined;
    });
    assert.equal(after.job?.state, "printing");
    assert.equal(mk4.printer.job?.id, printerJob, "the same print on the printer");

    // Down again; the print finishes meanwhile.
    await stopApp();
    mk4.setSpeed(SPEED * 1000);
    await waitFor("the printer to finish the vase", () => mk4.state() === "FINISHED");
    await startApp();
    await state(vase.id, "printed");
    assert.equal(mk4.printer.job?.id, printerJob, "still the one print: nothing was started twice");
    assert.deepEqual(await historyOf(vase.id), [
      "-→queued",
      "queued→scheduled",
      "scheduled→uploading",
      "uploading→printing",
      "printing→printed",
    ]);
    mk4.setSpeed(SPEED);
    await farm().markBedClear("mk4-a", "olga");
  });
});
