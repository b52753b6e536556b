/**
 * The farm end to end through `ferry serve` and its API, as a farm runs it: six printers of the
 * three vendors (two PrusaLink MK4s, two OctoPrints, two Klipper printers behind Moonraker; their
 * simulators' time runs 600× faster), operators and users with API tokens, 30 jobs with priorities,
 * models and tags. The jobs go through approval, scheduling, upload, printing and bed clear; one
 * is cancelled in each live state (pending approval, queued, scheduled, uploading, printing,
 * paused); a printer goes offline mid-print and comes back; a job is cancelled at its printer; an
 * upload breaks half way and is sent again. Meanwhile `ferry serve` is killed (-9) and started
 * again ten times, at moments the scenario picks and whenever a few more jobs have completed.
 *
 * Afterwards: every job is there, each in the state its story says; each history is a chain of
 * legal transitions ending in the job's state; every printer started exactly the prints the
 * histories record (nothing printed twice).
 *
 * Requests from the test never meet a dead server: a kill waits until none is in flight, and new
 * ones wait until the server is back, so a submission cannot be lost or sent twice by the test
 * itself. What a kill interrupts is the server's own work: ticks, uploads, scheduling passes.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { fetch, FormData } from "undici";
import { TRANSITIONS, type JobState } from "../src/farm/states.ts";
import { MoonrakerSim } from "../src/sim/moonraker/index.ts";
import { OctoPrintSim } from "../src/sim/octoprint/index.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { freePort } from "./servers/common.ts";
import { waitFor } from "./support/wait.ts";
import { estimatedGcode } from "./support/gcode.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const run = promisify(execFile);
const PASSWORD = "farm-e2e-maker";
const KEY = "farm-e2e-octo-key";
/** Printer time runs this many times faster: a 20-minute print takes 2 s. */
const SPEED = 600;
const KILLS = 10;
/** After this many regular jobs completed, the server is killed once more. */
const DRAIN_KILLS_AT = [4, 8, 12, 16, 19];

interface JobBody {
  id: string;
  orderId: string;
  owner: string | null;
  state: JobState;
  printer: string | null;
  priority: number;
  reason: string | null;
  waiting: string | null;
  progress: number | null;
  origin: "user" | "printer";
}

interface HistoryBody {
  seq: number;
  from: JobState | null;
  to: JobState;
  actor: string;
  at: string;
  reason: string | null;
}

interface PrinterBody {
  name: string;
  connection: string | null;
  activity: string | null;
  bedClear: boolean;
  maintenance: { reason: string } | null;
  job: JobBody | null;
  waiting: string | null;
}

type Who = "olga" | "ann" | "ben";

/**
 * `ferry serve` in a process of its own, on a fixed port, killed and started again by the test.
 * Requests go through `call`, which never overlaps a kill.
 */
class Serve {
  readonly url: string;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #output = "";
  #inflight = 0;
  #restarting: Promise<void> | undefined;
  kills = 0;

  constructor(dir: string, port: number) {
    this.#dir = dir;
    this.url = `http://127.0.0.1:${port}`;
  }

  /** The last lines the server wrote (for failure messages). */
  tail(): string {
    return this.#output.slice(-6_000);
  }

  /** The lines the server wrote that mention `word` (for failure messages). */
  linesWith(word: string): string {
    return this.#output
      .split("\n")
      .filter((line) => line.includes(word) || line.startsWith("----- kill"))
      .join("\n");
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [cli, "serve", "-c", join(this.#dir, "ferry.yaml")], {
      cwd: this.#dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    let seen = "";
    const keep = (chunk: Buffer) => {
      seen += chunk.toString();
      this.#output = (this.#output + chunk.toString()).slice(-4_000_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    await waitFor(
      "ferry serve to listen",
      () => {
        if (child.exitCode !== null)
          throw new Error(`ferry serve exited with ${child.exitCode}: ${this.tail()}`);
        return seen.includes(`server listening on ${this.url}`);
      },
      { detail: () => this.tail() },
    );
  }

  /** kill -9 at a moment when no request of the test is in flight, then start again. */
  async kill(): Promise<void> {
    while (this.#restarting) await this.#restarting;
    this.#restarting = (async () => {
      await waitFor("the test's requests to finish", () => this.#inflight === 0);
      const child = this.#child;
      assert.ok(child && child.exitCode === null, `ferry serve runs: ${this.tail()}`);
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      this.kills++;
      this.#output += `\n----- kill -9 #${this.kills} -----\n`;
      await this.start();
    })();
    try {
      await this.#restarting;
    } finally {
      this.#restarting = undefined;
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }

  async call(
    token: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    while (this.#restarting) await this.#restarting;
    this.#inflight++;
    try {
      const init: Parameters<typeof fetch>[1] = {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body instanceof FormData || body === undefined ? {} : { "content-type": "application/json" }),
        },
      };
      if (body instanceof FormData) init.body = body;
      else if (body !== undefined) init.body = JSON.stringify(body);
      const res = await fetch(this.url + path, init);
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
    } finally {
      this.#inflight--;
    }
  }
}

describe(
  "the farm through ferry serve, killed -9 ten times (six printers of three vendors)",
  { timeout: 600_000 },
  () => {
    let dir: string;
    let serve: Serve;
    const tokens = {} as Record<Who, string>;
    let mk4a: PrusaLinkSim, mk4b: PrusaLinkSim;
    let octo1: OctoPrintSim, octo2: OctoPrintSim;
    let klip1: MoonrakerSim, klip2: MoonrakerSim;
    const cleanups: (() => Promise<unknown>)[] = [];
    const sims = () => ({
      "mk4-a": mk4a,
      "mk4-b": mk4b,
      "octo-1": octo1,
      "octo-2": octo2,
      "klip-1": klip1,
      "klip-2": klip2,
    });

    async function api<T>(
      who: Who,
      method: string,
      path: string,
      body?: unknown,
      expect = [200, 201],
    ): Promise<T> {
      const res = await serve.call(tokens[who], method, path, body);
      assert.ok(
        expect.includes(res.status),
        `${who} ${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`,
      );
      return res.body as T;
    }

    const job = (id: string) => api<JobBody>("olga", "GET", `/api/v1/jobs/${id}`);
    const printer = (name: string) => api<PrinterBody>("olga", "GET", `/api/v1/printers/${name}`);

    async function state(id: string, wanted: JobState | JobState[], timeoutMs = 120_000): Promise<JobBody> {
      const states = Array.isArray(wanted) ? wanted : [wanted];
      return waitFor(
        `job ${id} to be ${states.join(" or ")}`,
        async () => {
          const found = await job(id);
          return states.includes(found.state) ? found : undefined;
        },
        {
          timeoutMs,
          intervalMs: 50,
          detail: async () => {
            const found = await job(id);
            const printers = await api<PrinterBody[]>("olga", "GET", "/api/v1/printers");
            return `it is ${found.state} (${found.reason ?? "-"}; waiting: ${found.waiting ?? "-"}); printers ${JSON.stringify(
              printers.map((p) => [p.name, p.connection, p.activity, p.bedClear, p.job?.state, p.waiting]),
            )}\n${serve.tail()}`;
          },
        },
      );
    }

    const files = new Map<string, string>();
    async function upload(name: string, content: Buffer): Promise<void> {
      const form = new FormData();
      form.append("file", new Blob([content]), name);
      const body = await api<{ file: { id: string } }>("olga", "POST", "/api/v1/files", form);
      files.set(name, body.file.id);
    }

    interface Submit {
      quantity?: number;
      priority?: number;
      model?: string;
      tags?: string[];
    }
    async function submit(who: Who, file: string, options: Submit = {}): Promise<JobBody[]> {
      const fileId = files.get(file);
      assert.ok(fileId, `uploaded ${file}`);
      const order = await api<{ jobs: JobBody[] }>(who, "POST", "/api/v1/jobs", { fileId, ...options });
      return order.jobs;
    }
    async function one(who: Who, file: string, options: Submit = {}): Promise<JobBody> {
      const [created] = await submit(who, file, options);
      assert.ok(created);
      return created;
    }

    const cancel = (who: Who, id: string) =>
      api<JobBody>(who, "POST", `/api/v1/jobs/${id}/cancel`, { reason: "the test cancels it" });

    /** Keeps the scheduler off a printer until its current job is done, so a scenario's job goes next. */
    async function reserve(name: string): Promise<void> {
      await api("olga", "PUT", `/api/v1/printers/${name}/maintenance`, { reason: "the test needs it next" });
      await waitFor(`${name} to be free`, async () => {
        const view = await printer(name);
        return view.job === null && view.bedClear;
      });
    }
    const release = (name: string) => api("olga", "DELETE", `/api/v1/printers/${name}/maintenance`);

    /**
     * A job of `file` printing on `name`: the printer reserved, the job submitted with its bay tag
     * and a priority above the rest, and the printer kept out of the scheduler's hands again once
     * the job prints, so the test may look at it after the job ended. `release` when done.
     */
    async function printOn(name: string, bay: string, file: string): Promise<JobBody> {
      await reserve(name);
      const created = await one("olga", file, { tags: [bay], priority: 100 });
      await release(name);
      await state(created.id, "printing");
      await api("olga", "PUT", `/api/v1/printers/${name}/maintenance`, { reason: "the test looks at it" });
      return created;
    }

    /** Where the scenario is, written as it goes, for a run that hangs. */
    const step = (what: string) => process.stderr.write(`farm e2e: ${what}\n`);

    /** Ends the test's background loops (the operator, the kills while the queue drains). */
    const ended = new AbortController();
    const running = () => {
      if (ended.signal.aborted) throw new Error("the test ended");
    };
    let background: Promise<unknown>[] = [];

    // The operator takes finished parts off the beds (and what a stopped print left there).
    async function operate(): Promise<void> {
      while (!ended.signal.aborted) {
        for (const view of await api<PrinterBody[]>("olga", "GET", "/api/v1/printers")) {
          const done = view.job === null || view.job.state === "printed";
          if (!view.bedClear && done && view.activity !== "printing" && view.activity !== "paused")
            // 409 when the screen was already old: a job took the printer since.
            await api("olga", "POST", `/api/v1/printers/${view.name}/bed-clear`, undefined, [200, 409]);
        }
        await sleep(100); // a poll interval, as an operator glances at the screen
      }
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "ferry-farm-e2e-"));
      const prusa = () => PrusaLinkSim.start({ password: PASSWORD, speed: SPEED });
      const octo = () => OctoPrintSim.start({ apiKey: KEY, speed: SPEED });
      const klipper = () => MoonrakerSim.start({ speed: SPEED });
      [mk4a, mk4b, octo1, octo2, klip1, klip2] = await Promise.all([
        prusa(),
        prusa(),
        octo(),
        octo(),
        klipper(),
        klipper(),
      ]);
      for (const sim of Object.values(sims())) cleanups.push(() => sim.close());
      const port = await freePort();
      await writeFile(
        join(dir, "ferry.yaml"),
        `data_dir: ./data
server: { listen: "127.0.0.1:${port}" }
devices:
  mk4-a:  { type: prusalink, url: "${mk4a.url}", password: "${PASSWORD}", farm: true, model: MK4, tags: [PLA, PETG, bay-1] }
  mk4-b:  { type: prusalink, url: "${mk4b.url}", password: "${PASSWORD}", farm: true, model: MK4, tags: [PLA, TPU, bay-2] }
  octo-1: { type: octoprint, url: "${octo1.url}", api_key: "${KEY}", farm: true, auto_clear: true, tags: [PLA, bay-3] }
  octo-2: { type: octoprint, url: "${octo2.url}", api_key: "${KEY}", farm: true, auto_clear: true, tags: [PLA, PETG, bay-4] }
  klip-1: { type: moonraker, url: "${klip1.url}", farm: true, model: Voron, tags: [ABS, PLA, bay-5] }
  klip-2: { type: moonraker, url: "${klip2.url}", farm: true, model: Voron, tags: [ABS, bay-6] }
farm:
  approval: [user]
  max_heating: 4
  interval: 200ms
`,
      );
      const ferry = (...args: string[]) =>
        run(process.execPath, [cli, ...args, "-c", join(dir, "ferry.yaml")], { cwd: dir });
      for (const [name, role] of [
        ["olga", "operator"],
        ["ann", "user"],
        ["ben", "user"],
      ] as const) {
        await ferry("user", "add", name, "--role", role);
        tokens[name] = (await ferry("token", "create", "e2e", "--user", name)).stdout.trim();
      }
      serve = new Serve(dir, port);
      cleanups.push(() => serve.stop());
      await serve.start();
    });

    after(async () => {
      ended.abort();
      await Promise.allSettled(background);
      for (const cleanup of cleanups.reverse()) await cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    test(
      "30 jobs to their ends through approval, scheduling, upload, printing and bed clear; cancelled in every live state; nothing lost or printed twice",
      { timeout: 900_000 },
      async () => {
        await upload("pla-part.gcode", estimatedGcode(20, "a PLA part"));
        await upload("petg-part.gcode", estimatedGcode(20, "a PETG part"));
        await upload("abs-part.gcode", estimatedGcode(20, "an ABS part"));
        await upload("urgent.gcode", estimatedGcode(20, "an urgent PLA part"));
        await upload("long.gcode", estimatedGcode(600, "a ten-hour print"));
        await upload("hour.gcode", estimatedGcode(60, "an hour's print"));
        const big = estimatedGcode(20, "a large file", 400_000);
        await upload("big.gcode", big);

        step("21 regular jobs, while no bed is known to be clear: nothing starts yet.");
        const regular = [
          ...(await submit("olga", "pla-part.gcode", { quantity: 6, tags: ["PLA"] })),
          ...(await submit("olga", "petg-part.gcode", { quantity: 3, tags: ["PETG"] })),
          ...(await submit("olga", "abs-part.gcode", { quantity: 4, model: "voron", tags: ["ABS"] })),
          ...(await submit("ann", "pla-part.gcode", { quantity: 4, tags: ["PLA"] })),
          ...(await submit("ben", "pla-part.gcode", { quantity: 3 })),
        ];
        const urgent = await one("olga", "urgent.gcode", { priority: 5, tags: ["PLA"] });
        regular.push(urgent);
        assert.equal(regular.length, 21);
        const byUsers = regular.filter((j) => j.owner === "ann" || j.owner === "ben");
        assert.ok(
          byUsers.every((j) => j.state === "pending_approval"),
          "users' jobs wait for approval",
        );
        assert.ok(
          regular.filter((j) => j.owner === "olga").every((j) => j.state === "queued"),
          "an operator's are queued at once",
        );
        const pending = await one("ann", "pla-part.gcode");
        assert.equal(pending.state, "pending_approval");

        await serve.kill(); // 1: jobs waiting, nothing on a printer yet

        step("Cancelled while pending approval, by its owner; a user sees and cancels only her own jobs.");
        assert.equal((await cancel("ann", pending.id)).state, "cancelled");
        const bens = byUsers.find((j) => j.owner === "ben");
        assert.ok(bens);
        assert.equal((await serve.call(tokens.ann, "GET", `/api/v1/jobs/${bens.id}`)).status, 404);
        assert.equal(
          (await serve.call(tokens.ann, "POST", `/api/v1/jobs/${bens.id}/cancel`, {})).status,
          404,
        );
        const annSees = await api<JobBody[]>("ann", "GET", "/api/v1/jobs?limit=500");
        assert.deepEqual(new Set(annSees.map((j) => j.owner)), new Set(["ann"]));
        assert.equal((await serve.call(tokens.ann, "POST", `/api/v1/jobs/${bens.id}/approve`)).status, 403);
        for (const j of byUsers)
          assert.equal((await api<JobBody>("olga", "POST", `/api/v1/jobs/${j.id}/approve`)).state, "queued");

        step("The beds are clear: the farm starts, the urgent job first.");
        for (const name of Object.keys(sims()))
          await api("olga", "POST", `/api/v1/printers/${name}/bed-clear`);
        const operator = operate();

        step("Every few completed jobs, the server is killed once more (kills 6 to 10).");
        const ids = new Set(regular.map((j) => j.id));
        const completed = async () =>
          (await api<JobBody[]>("olga", "GET", "/api/v1/jobs?state=completed&limit=500")).filter((j) =>
            ids.has(j.id),
          ).length;
        const drain = (async () => {
          for (const threshold of DRAIN_KILLS_AT) {
            await waitFor(
              `${threshold} regular jobs to complete`,
              async () => (running(), await completed()) >= threshold,
              {
                timeoutMs: 240_000,
                intervalMs: 100,
              },
            );
            running();
            await serve.kill();
          }
        })();
        background = [operator, drain];

        step("Cancelled while queued: only mk4-b has TPU, and it is in maintenance.");
        await api("olga", "PUT", "/api/v1/printers/mk4-b/maintenance", { reason: "nozzle change" });
        const tpu = await one("olga", "pla-part.gcode", { tags: ["TPU"], priority: 100 });
        const waiting = await waitFor(
          "the TPU job to say why it waits",
          async () => (await job(tpu.id)).waiting,
        );
        assert.match(waiting, /TPU/);
        assert.equal((await cancel("olga", tpu.id)).state, "cancelled");

        step("Cancelled while scheduled: assigned to mk4-b while it is busy, so its upload cannot begin.");
        await waitFor("mk4-b to be free", async () => {
          const view = await printer("mk4-b");
          return view.job === null && view.bedClear;
        });
        mk4b.setState("BUSY");
        await waitFor("mk4-b to be seen busy", async () => (await printer("mk4-b")).activity === "busy");
        await release("mk4-b");
        const scheduled = await one("olga", "pla-part.gcode", { tags: ["TPU"], priority: 100 });
        await api("olga", "POST", `/api/v1/jobs/${scheduled.id}/assign`, { printer: "mk4-b" });
        await waitFor("mk4-b's worker to wait with the scheduled job", async () => {
          const view = await printer("mk4-b");
          return view.job?.id === scheduled.id && view.job.state === "scheduled" && view.waiting === "busy";
        });
        assert.equal((await cancel("olga", scheduled.id)).state, "cancelled");
        mk4b.setState("IDLE");

        step("Cancelled while uploading: octo-2 holds the upload.");
        await reserve("octo-2");
        octo2.holdUploads();
        const uploading = await one("olga", "big.gcode", { tags: ["bay-4"], priority: 100 });
        await release("octo-2");
        await state(uploading.id, "uploading");
        await waitFor("the upload to reach octo-2", () => octo2.uploads().length === 1);
        await cancel("olga", uploading.id);
        await state(uploading.id, "cancelled");
        octo2.releaseUploads();
        assert.equal(
          octo2.files().find((f) => /^ferry\/big\./.test(f.path)),
          undefined,
          "nothing of the cancelled upload under its name",
        );

        step("Cancelled while printing, and killed while it is being stopped.");
        const printing = await printOn("mk4-a", "bay-1", "long.gcode");
        assert.equal((await cancel("olga", printing.id)).state, "cancelling");
        await serve.kill(); // 2
        await state(printing.id, "cancelled");
        assert.equal(mk4a.state(), "STOPPED", "mk4-a stopped the print");
        await release("mk4-a");

        step("Paused from Ferry, killed while paused, then cancelled.");
        const paused = await printOn("klip-1", "bay-5", "long.gcode");
        await api("olga", "POST", "/api/v1/printers/klip-1/pause");
        await state(paused.id, "paused");
        await serve.kill(); // 3
        assert.equal((await job(paused.id)).state, "paused");
        await cancel("olga", paused.id);
        await state(paused.id, "cancelled");
        assert.equal(klip1.state(), "cancelled", "Klipper cancelled it");
        await release("klip-1");

        step("An upload breaks half way (the connection is reset); the task sends it again and it prints.");
        await reserve("octo-1");
        octo1.injectFault({ resetAfterBytes: Math.floor(big.length / 2) });
        const broken = await one("olga", "big.gcode", { tags: ["bay-3"], priority: 100 });
        await release("octo-1");
        await state(broken.id, ["printing", "printed", "completed"]);
        assert.equal(octo1.printer.resetAfterBytes, undefined, "an upload met the fault");
        await serve.kill(); // 4
        await state(broken.id, "completed");
        assert.equal(octo1.files().find((f) => /^ferry\/big\./.test(f.path))?.size, big.length);

        step("klip-2 goes offline mid-print (Ferry is killed meanwhile) and comes back; the print goes on.");
        await reserve("klip-2");
        const offline = await one("olga", "hour.gcode", { model: "Voron", tags: ["bay-6"], priority: 100 });
        await release("klip-2");
        await state(offline.id, "printing");
        klip2.disconnect();
        await waitFor(
          "klip-2 to be seen offline",
          async () => (await printer("klip-2")).connection === "offline",
        );
        await serve.kill(); // 5
        await waitFor(
          "the new server to see klip-2 offline",
          async () => (await printer("klip-2")).connection === "offline",
        );
        assert.equal((await job(offline.id)).state, "printing", "an offline printer's job waits for it");
        klip2.reconnect();
        await state(offline.id, "completed");

        step("Cancelled at the printer (its own screen): Ferry records it.");
        const atPrinter = await printOn("mk4-b", "bay-2", "long.gcode");
        mk4b.printer.cancel();
        const stopped = await state(atPrinter.id, "cancelled");
        assert.equal(stopped.reason, "stopped at the printer");
        await release("mk4-b");

        await drain;
        for (const j of regular) await state(j.id, "completed", 240_000);
        ended.abort();
        await operator;
        assert.equal(serve.kills, KILLS);

        step("Nothing lost: the 30 jobs, and no other.");
        const all = await api<JobBody[]>("olga", "GET", "/api/v1/jobs?limit=500");
        const cancelledIds = [pending, tpu, scheduled, uploading, printing, paused, atPrinter].map(
          (j) => j.id,
        );
        const completedIds = [...regular, broken, offline].map((j) => j.id);
        assert.equal(all.length, 30, `30 jobs: ${JSON.stringify(all.map((j) => [j.id, j.state, j.origin]))}`);
        assert.deepEqual(
          new Map(all.map((j) => [j.id, j.state])),
          new Map([
            ...cancelledIds.map((id) => [id, "cancelled"] as const),
            ...completedIds.map((id) => [id, "completed"] as const),
          ]),
        );

        step(
          "Every history is a chain of legal transitions ending in the job's state; nothing printed twice.",
        );
        const started = new Map<string, number>();
        const scheduledAt = new Map<string, number>();
        for (const j of all) {
          const history = await api<HistoryBody[]>("olga", "GET", `/api/v1/jobs/${j.id}/history`);
          const chain = history.map((h) => `${h.from ?? "-"}→${h.to}`).join(" ");
          assert.equal(history[0]?.from, null, `job ${j.id} begins with its creation: ${chain}`);
          for (let i = 1; i < history.length; i++) {
            const [before, now] = [history[i - 1], history[i]];
            assert.ok(before && now);
            assert.equal(now.from, before.to, `job ${j.id}: each step starts where the last ended: ${chain}`);
            assert.ok(
              TRANSITIONS[before.to].includes(now.to),
              `job ${j.id}: ${before.to}→${now.to} is legal: ${chain}`,
            );
            assert.ok(now.seq > before.seq);
          }
          assert.equal(history.at(-1)?.to, j.state, `job ${j.id}'s history ends in its state: ${chain}`);
          const prints = history.filter((h) => h.from === "uploading" && h.to === "printing").length;
          assert.ok(prints <= 1, `job ${j.id} printed once at most: ${chain}`);
          if (prints === 1) {
            assert.ok(j.printer);
            started.set(j.printer, (started.get(j.printer) ?? 0) + 1);
          }
          const first = history.find((h) => h.to === "scheduled");
          if (first) scheduledAt.set(j.id, Date.parse(first.at));
        }
        for (const [name, sim] of Object.entries(sims()))
          assert.equal(
            sim.printer.job?.id ?? 0,
            started.get(name) ?? 0,
            `${name} started the prints the histories record:\n${serve.linesWith(name)}`,
          );

        step("The urgent job went first: no job was scheduled before it.");
        const urgentAt = scheduledAt.get(urgent.id);
        assert.ok(urgentAt !== undefined);
        for (const [id, at] of scheduledAt)
          assert.ok(at >= urgentAt, `job ${id} was not scheduled before the urgent one`);
      },
    );
  },
);
