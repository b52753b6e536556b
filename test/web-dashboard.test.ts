/**
 * The dashboard in a real browser (Debian's Chromium, headless, through playwright-core) against
 * `ferry serve`'s server and App over simulated PrusaLink printers: sign-in, the farm grid and its
 * live states, a job from upload to completed, who sees which jobs, a transfer's bar, a failed
 * printer's reason. It takes the README's screenshots on the way: into docs/screenshots/ with
 * FERRY_UPDATE_SCREENSHOTS=1, else into its temp folder (so a test run leaves the docs alone, and two
 * runs at once never write the same file).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { fetch } from "undici";
import { buildWeb, isStale } from "../scripts/build-web.ts";
import { createApp, type App } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import { DASHBOARD_DIR, FerryServer } from "../src/server/server.ts";
import { OctoPrintSim } from "../src/sim/octoprint/index.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { browserTestOptions, launchBrowser } from "./support/browser.ts";
import { waitFor } from "./support/wait.ts";

const PASSWORD = "dashboard-e2e-pass";
const SIM_PASSWORD = "sim-secret";
/** Printer time runs this much faster: the 9-minute cube prints in about 15 s. */
const SPEED = 36;
const FIXTURE = fileURLToPath(new URL("./fixtures/gcode/cube-mini-png.gcode", import.meta.url));
const OTHER_FIXTURE = fileURLToPath(new URL("./fixtures/gcode/cube-mini-qoi.gcode", import.meta.url));
const README_SCREENSHOTS = fileURLToPath(new URL("../docs/screenshots/", import.meta.url));
const WAIT = { timeoutMs: 90_000 };

describe("the dashboard in a browser", { timeout: 300_000, ...browserTestOptions() }, () => {
  let dir: string;
  let mk4a: PrusaLinkSim;
  let mk4b: PrusaLinkSim;
  let store: OctoPrintSim;
  let app: App;
  let server: FerryServer;
  let url: string;
  let browser: Browser;
  let admin: BrowserContext;
  let maker: BrowserContext;
  const announced: string[] = [];
  /** What before() started, stopped in reverse order by after(), however far before() came. */
  const cleanup: (() => Promise<unknown>)[] = [];
  /** Where the screenshots go (see the top of this file). */
  let screenshots: string;

  before(async () => {
    if (isStale()) await buildWeb();
    dir = await mkdtemp(join(tmpdir(), "ferry-web-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, "master"));
    screenshots =
      process.env.FERRY_UPDATE_SCREENSHOTS === "1" ? README_SCREENSHOTS : join(dir, "screenshots");
    await mkdir(screenshots, { recursive: true });
    mk4a = await PrusaLinkSim.start({ password: SIM_PASSWORD, speed: SPEED, name: "mk4-a" });
    mk4b = await PrusaLinkSim.start({ password: SIM_PASSWORD, speed: SPEED, name: "mk4-b" });
    const locked = await PrusaLinkSim.start({ password: SIM_PASSWORD, speed: SPEED, name: "mk4-c" });
    // A slow link (2 MB/s), so that a transfer's bar is seen moving (OctoPrint: its upload is one
    // request whose progress is the bytes sent; PrusaLink reports what it stored at the end).
    store = await OctoPrintSim.start({
      apiKey: SIM_PASSWORD,
      rate: 2_000_000,
      name: "store",
      storeContent: false,
    });
    for (const sim of [mk4a, mk4b, locked, store]) cleanup.push(() => sim.close());
    const config = parseConfig(
      `data_dir: ./data
server:
  listen: 127.0.0.1:0
devices:
  mk4-a: { type: prusalink, url: "${mk4a.url}", password: "${SIM_PASSWORD}", farm: true, model: MK4, tags: [PLA] }
  mk4-b: { type: prusalink, url: "${mk4b.url}", password: "${SIM_PASSWORD}", farm: true, model: MK4 }
  mk4-c: { type: prusalink, url: "${locked.url}", password: "not-the-password", farm: true, model: MK4 }
  store: { type: octoprint, url: "${store.url}", api_key: "${SIM_PASSWORD}" }
syncs:
  gcode:
    source: ./master
    targets: [store]
    mode: copy
farm:
  approval: [user]
  interval: 200ms
`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    app = await createApp(config, { logger: silentLogger });
    await app.start();
    cleanup.push(() => app.stop());
    assert.ok(config.server);
    server = await FerryServer.create(app, config.server, {
      env: {},
      announce: (line) => announced.push(line),
      dashboard: DASHBOARD_DIR,
    });
    cleanup.push(() => server.close());
    url = await server.start();
    const accounts = app.stored.accounts;
    await accounts.addUser({ name: "olga", role: "admin", password: PASSWORD });
    await accounts.addUser({ name: "maker", role: "user", password: PASSWORD });
    await accounts.addUser({ name: "other", role: "user", password: PASSWORD });
    browser = await launchBrowser();
    cleanup.push(() => browser.close());
    admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    maker = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  /** A page of the dashboard, signed in as `name` (once per browser context: the session cookie stays). */
  async function signIn(context: BrowserContext, name: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(url + "/");
    const form = page.getByRole("form", { name: "Sign in" });
    await form.or(page.getByRole("navigation", { name: "Pages" })).waitFor();
    if (await form.isVisible()) {
      await page.getByLabel("User name").fill(name);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
    }
    await page.getByRole("navigation", { name: "Pages" }).waitFor();
    assert.match(await page.locator(".who").innerText(), new RegExp(`^${name} `));
    await page.getByText("● live").waitFor();
    return page;
  }

  const card = (page: Page, printer: string) => page.locator(`li[data-printer="${printer}"]`);

  test("the server says where the dashboard is, and keeps /api for the API", async () => {
    assert.ok(
      announced.some((line) => line === `ferry: dashboard at ${url}/`),
      announced.join("\n"),
    );
    const page = await fetch(url + "/jobs");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    assert.match(await page.text(), /<div id="root">/);
    const api = await fetch(url + "/api/v1/nothing-here");
    assert.equal(api.status, 404);
    assert.match(api.headers.get("content-type") ?? "", /problem\+json/);
    assert.equal((await fetch(url + "/api/v1/printers")).status, 401, "the API is not shadowed");
  });

  test("a wrong password is refused in words", async () => {
    const page = await admin.newPage();
    await page.goto(url + "/");
    await page.getByLabel("User name").fill("olga");
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "wrong user name or password" }).waitFor();
    await page.close();
  });

  test("the farm grid shows the printers, their states change live, a failed one says why", async () => {
    const page = await signIn(admin, "olga");
    for (const name of ["mk4-a", "mk4-b", "mk4-c"]) await card(page, name).waitFor();
    await waitFor(
      "mk4-b idle on its card",
      async () => (await card(page, "mk4-b").getAttribute("data-status")) === "idle",
      WAIT,
    );
    // The printer changes; the page follows without being reloaded.
    mk4b.setState("ATTENTION");
    await waitFor(
      "mk4-b to need attention on its card",
      async () => (await card(page, "mk4-b").getAttribute("data-status")) === "error",
      WAIT,
    );
    mk4b.setState("IDLE");
    await waitFor(
      "mk4-b idle again",
      async () => (await card(page, "mk4-b").getAttribute("data-status")) === "idle",
      WAIT,
    );
    // The printer refusing Ferry's password: offline, with the reason on its card.
    await waitFor(
      "mk4-c offline",
      async () => (await card(page, "mk4-c").getAttribute("data-status")) === "offline",
      WAIT,
    );
    const reason = await card(page, "mk4-c").locator(".reason").innerText();
    assert.match(reason, /HTTP 401: authentication failed: check the user name and password/, reason);
    await page.close();
  });

  test("a job: uploaded, approved, scheduled, printing with progress rising, printed, bed clear, completed", async () => {
    // Another user's job, which the maker must never see (it waits for a PETG printer nobody has).
    const otherPage = await signIn(await browser.newContext(), "other");
    await otherPage.getByRole("link", { name: "Jobs" }).click();
    await otherPage.getByLabel(/Upload a file/).setInputFiles(OTHER_FIXTURE);
    await otherPage.getByLabel(/Printer tags/).fill("PETG");
    await otherPage.getByRole("button", { name: "Submit", exact: true }).click();
    await otherPage.getByRole("status").filter({ hasText: "Submitted 1 job" }).waitFor();
    await otherPage.context().close();

    const mine = await signIn(maker, "maker");
    await mine.getByRole("link", { name: "Jobs" }).click();
    await mine.getByLabel(/Upload a file/).setInputFiles(FIXTURE);
    await mine.getByLabel(/Printer tags/).fill("PLA");
    await mine.getByRole("button", { name: "Submit", exact: true }).click();
    await mine.getByRole("status").filter({ hasText: "Submitted 1 job (pending approval)" }).waitFor();
    const myRow = mine.locator("li.job-row", { hasText: "cube-mini-png.gcode" });
    await myRow.waitFor();
    assert.equal(await myRow.getAttribute("data-state"), "pending_approval");
    assert.equal(
      await mine.locator("li.job-row", { hasText: "cube-mini-qoi.gcode" }).count(),
      0,
      "another user's job is not shown",
    );
    const jobId = await myRow.getAttribute("data-job");
    assert.ok(jobId);

    // The operator approves it; it waits for mk4-a's bed.
    const ops = await signIn(admin, "olga");
    await ops.getByRole("link", { name: "Jobs" }).click();
    const row = ops.locator(`li[data-job="${jobId}"]`);
    await row.getByRole("button", { name: "Approve" }).click();
    await waitFor("the job queued", async () => (await row.getAttribute("data-state")) === "queued", WAIT);
    await row.locator(".waiting", { hasText: "bed not marked clear" }).waitFor();
    assert.equal(
      await ops.locator("li.job-row", { hasText: "cube-mini-qoi.gcode" }).count(),
      1,
      "operators see every job",
    );
    await ops.screenshot({ path: join(screenshots, "jobs.png"), fullPage: false });

    // Mark mk4-a's bed clear on the farm page (it asks first).
    await ops.getByRole("link", { name: "Farm" }).click();
    await card(ops, "mk4-a").getByRole("button", { name: "Mark bed clear" }).click();
    await ops.getByRole("dialog").getByRole("button", { name: "Mark bed clear" }).click();

    // The maker's page follows live: printing with progress rising, then printed.
    const bar = myRow.getByRole("progressbar");
    await waitFor(
      "the job printing",
      async () => (await myRow.getAttribute("data-state")) === "printing",
      WAIT,
    );
    const first = await waitFor(
      "some progress",
      async () => {
        const value = Number((await bar.getAttribute("aria-valuenow")) ?? "0");
        return value > 0 ? value : undefined;
      },
      WAIT,
    );
    await waitFor(
      "progress rising",
      async () => {
        if ((await myRow.getAttribute("data-state")) !== "printing") return false;
        return Number((await bar.getAttribute("aria-valuenow")) ?? "0") > first;
      },
      WAIT,
    );
    // The farm grid while it prints.
    await card(ops, "mk4-a").locator(".job .file").waitFor();
    await ops.screenshot({ path: join(screenshots, "farm.png"), fullPage: false });
    await waitFor(
      "the job printed",
      async () => (await myRow.getAttribute("data-state")) === "printed",
      WAIT,
    );

    // The part comes off: completed.
    await card(ops, "mk4-a").getByRole("button", { name: "Mark bed clear" }).click();
    await ops.getByRole("dialog").getByRole("button", { name: "Mark bed clear" }).click();
    await waitFor(
      "the job completed",
      async () => (await myRow.getAttribute("data-state")) === "completed",
      WAIT,
    );

    // Its history, on the page: every step, scheduled among them.
    await myRow.getByRole("button", { name: "History" }).click();
    const timeline = myRow.getByRole("list", { name: "History" });
    await timeline.locator("li", { hasText: "completed by olga" }).waitFor();
    assert.deepEqual(await timeline.locator(".to").allInnerTexts(), [
      "pending approval",
      "queued",
      "scheduled",
      "uploading",
      "printing",
      "printed",
      "completed",
    ]);
    // Still no sign of the other user's job, on any of the maker's pages.
    assert.equal(await mine.locator("li.job-row", { hasText: "cube-mini-qoi.gcode" }).count(), 0);
    const api = await mine.evaluate(
      async () => (await fetch("/api/v1/jobs")).json() as Promise<{ owner: string }[]>,
    );
    assert.deepEqual([...new Set(api.map((j) => j.owner))], ["maker"]);

    // The printer's own page: its temperature chart (heaters from the last hour), its jobs, the
    // files on it (the farm's folder), its event log with this job in it.
    await card(ops, "mk4-a").getByRole("link", { name: "mk4-a" }).click();
    const chart = ops.getByRole("img", { name: "Temperature chart of mk4-a" });
    await chart.locator("canvas").waitFor();
    await ops.locator(".chart").getByText("tool0 actual").waitFor();
    await ops.getByRole("region", { name: "Jobs" }).getByText("cube-mini-png.gcode · completed").waitFor();
    await ops
      .getByRole("region", { name: /Files on the printer/ })
      .getByRole("button", { name: "ferry/" })
      .waitFor();
    await ops.locator("ol.log li", { hasText: "cube-mini-png.gcode: printed → completed by olga" }).waitFor();
    await ops.close();
    await mine.close();
  });

  test("a transfer's bar moves and ends", async () => {
    const page = await signIn(admin, "olga");
    await page.getByRole("link", { name: "Transfers" }).click();
    await page.getByRole("row", { name: /gcode/ }).waitFor();
    // 24 MB over a 2 MB/s link: about twelve seconds (the first few MB fill the socket's buffers at once).
    await writeFile(join(dir, "master", "big-part.gcode"), randomBytes(24_000_000));
    await page.getByRole("button", { name: "Sync now" }).click();
    const item = page.locator("ul.transfers li", { hasText: "big-part.gcode" });
    const bar = item.getByRole("progressbar");
    const shown = async () =>
      Number((await bar.getAttribute("aria-valuenow", { timeout: 500 }).catch(() => null)) ?? "0");
    const first = await waitFor(
      "the transfer to show some bytes",
      async () => {
        const value = await shown();
        return value > 0 && value < 100 ? value : undefined;
      },
      {
        ...WAIT,
        detail: async () =>
          `${await page.locator("main").innerHTML()}; store has ${JSON.stringify(store.files())}; tasks ${JSON.stringify(await app.stored.queue.list({ limit: 10 }))}`,
      },
    );
    await page.screenshot({ path: join(screenshots, "transfers.png"), fullPage: false });
    await waitFor(
      "the bar to move",
      async () => {
        if ((await item.count()) === 0) return true; // done already: it moved to the end
        return (await shown()) > first;
      },
      WAIT,
    );
    await waitFor("the transfer to end", async () => (await item.count()) === 0, WAIT);
    assert.equal(store.files().find((f) => f.path.endsWith("big-part.gcode"))?.size, 24_000_000);
    await page.close();
  });

  test("on a phone the farm fits the screen", async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    const page = await signIn(phone, "olga");
    await card(page, "mk4-a").waitFor();
    // Evaluated in the page (this file is typed for Node, without the DOM's globals).
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
    await phone.close();
  });
});
