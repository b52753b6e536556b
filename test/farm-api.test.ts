/**
 * A slicer sends straight to the farm: Ferry's server in front of a simulated PrusaLink printer
 * (MK4, printer time 600× faster), and the requests PrusaSlicer's "OctoPrint" physical printer
 * makes, byte for byte as libcurl writes them (src/slic3r/Utils/OctoPrint.cpp and Http.cpp): the
 * connection test (`GET /api/version` with `X-Api-Key`), then `POST /api/files/local` as a curl
 * form (`print`, `path`, then the file as application/octet-stream; `Expect: 100-continue`, the
 * body sent once the server said 100 Continue). The user's job waits for approval; an operator
 * approves it and marks the bed clear through the API; the printer prints it; the operator marks
 * the bed clear again and the job is completed. Its events are in the event history.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fetch } from "undici";
import { createApp, nodeName, type App } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import { FerryServer } from "../src/server/server.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { waitFor } from "./support/wait.ts";

const PASSWORD = "farm-api-e2e";
const SPEED = 600;
const FIXTURE = new URL("./fixtures/gcode/cube-mini-png.gcode", import.meta.url);

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
  /** Interim answers before the final one (e.g. "100 Continue"). */
  interim: number[];
}

/**
 * One HTTP/1.1 exchange on a raw socket, as libcurl does it: the head; with `Expect: 100-continue`
 * the body only after the server's 100 Continue; then the answer, read to its Content-Length.
 */
function rawRequest(port: number, head: string, body?: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = Buffer.alloc(0);
    const interim: number[] = [];
    let sentBody = body === undefined || !/\r\nExpect: 100-continue\r\n/i.test(head);
    socket.on("error", reject);
    socket.on("connect", () => {
      socket.write(head);
      if (sentBody && body) socket.write(body);
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      for (;;) {
        const end = received.indexOf("\r\n\r\n");
        if (end < 0) return;
        const lines = received.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "")?.[1]);
        const headers = new Map(
          lines.slice(1).map((line) => {
            const colon = line.indexOf(":");
            return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as const;
          }),
        );
        if (status === 100) {
          interim.push(status);
          received = received.subarray(end + 4);
          if (!sentBody && body) {
            sentBody = true;
            socket.write(body);
          }
          continue;
        }
        const length = Number(headers.get("content-length") ?? "0");
        if (received.length < end + 4 + length) return;
        socket.destroy();
        resolve({
          status,
          headers,
          body: received.subarray(end + 4, end + 4 + length).toString("utf8"),
          interim,
        });
        return;
      }
    });
  });
}

/** The form libcurl's curl_formadd builds for PrusaSlicer's upload: print, path, then the file. */
function prusaSlicerForm(file: Buffer, filename: string, print: boolean): { boundary: string; body: Buffer } {
  const boundary = `------------------------${randomBytes(8).toString("hex")}`;
  const text = (name: string, value: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const body = Buffer.concat([
    Buffer.from(text("print", print ? "true" : "false") + text("path", "")),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
        "Content-Type: application/octet-stream\r\n\r\n",
    ),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { boundary, body };
}

interface JobBody {
  id: string;
  state: string;
  printer: string | null;
  owner: string;
  waiting: string | null;
  progress: number | null;
}

describe(
  "a slicer's upload with print=true ends as a completed job (PrusaLink simulator)",
  { timeout: 180_000 },
  () => {
    let dir: string;
    let mk4: PrusaLinkSim;
    let app: App;
    let server: FerryServer;
    let port: number;
    let maker: string;
    let olga: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "ferry-farm-api-"));
      mk4 = await PrusaLinkSim.start({ password: PASSWORD, speed: SPEED });
      const config = parseConfig(
        `data_dir: ./data
server:
  listen: 127.0.0.1:0
devices:
  mk4-a: { type: prusalink, url: "${mk4.url}", password: "${PASSWORD}", farm: true, model: MK4 }
farm:
  approval: [user]
  interval: 100ms
`,
        join(dir, "ferry.yaml"),
        { deviceKinds, env: {} },
      );
      app = await createApp(config, { logger: silentLogger });
      await app.start();
      assert.ok(config.server);
      server = await FerryServer.create(app, config.server, { env: {}, announce: () => undefined });
      await server.start();
      const address = server.fastify.server.address();
      assert.ok(typeof address === "object" && address !== null);
      port = address.port;
      const accounts = app.stored.accounts;
      await accounts.addUser({ name: "maker", role: "user" });
      await accounts.addUser({ name: "olga", role: "operator" });
      maker = (
        await accounts.createToken({ user: "maker", name: "prusaslicer", role: "user", expiresAt: null })
      ).secret;
      olga = (await accounts.createToken({ user: "olga", name: "cli", role: "operator", expiresAt: null }))
        .secret;
    });

    after(async () => {
      await server.close();
      await app.stop();
      await mk4.close();
      await rm(dir, { recursive: true, force: true });
    });

    const api = async <T>(path: string, method = "GET"): Promise<T> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { authorization: `Bearer ${olga}` },
      });
      const text = await response.text();
      assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
      return JSON.parse(text) as T;
    };
    const job = (id: string) => api<JobBody>(`/api/v1/jobs/${id}`);
    const jobIn = (id: string, state: string) =>
      waitFor(
        `job ${id} to be ${state}`,
        async () => ((await job(id)).state === state ? job(id) : undefined),
        {
          timeoutMs: 90_000,
          detail: async () => JSON.stringify(await job(id)),
        },
      );

    test("PrusaSlicer's connection test, its upload, approval, printing, bed clear, completed", async () => {
      const host = `Host: 127.0.0.1:${port}\r\nUser-Agent: PrusaSlicer/2.8.1\r\nAccept: */*\r\n`;

      // The "Test" button: a version answer with `api`, and a text starting with "OctoPrint".
      const version = await rawRequest(
        port,
        `GET /api/version HTTP/1.1\r\n${host}X-Api-Key: ${maker}\r\n\r\n`,
      );
      assert.equal(version.status, 200, version.body);
      const info = JSON.parse(version.body) as { api?: string; text?: string };
      assert.equal(info.api, "0.1");
      assert.match(info.text ?? "", /^OctoPrint /);
      const wrongKey = await rawRequest(
        port,
        `GET /api/version HTTP/1.1\r\n${host}X-Api-Key: ${maker}x\r\n\r\n`,
      );
      assert.equal(wrongKey.status, 401);

      // "Upload and print".
      const gcode = await readFile(FIXTURE);
      const form = prusaSlicerForm(gcode, "cube-mini.gcode", true);
      const upload = await rawRequest(
        port,
        `POST /api/files/local HTTP/1.1\r\n${host}X-Api-Key: ${maker}\r\nContent-Length: ${form.body.length}\r\n` +
          `Content-Type: multipart/form-data; boundary=${form.boundary}\r\nExpect: 100-continue\r\n\r\n`,
        form.body,
      );
      assert.deepEqual(upload.interim, [100], "the body went after 100 Continue");
      assert.equal(upload.status, 201, upload.body);
      const answer = JSON.parse(upload.body) as {
        files: { local: { name: string; origin: string; refs: { resource: string; download: string } } };
        done: boolean;
        effectivePrint: boolean;
        ferry: { fileId: string; orderId: string; jobs: { id: string; state: string }[] };
      };
      const resource = `http://127.0.0.1:${port}/api/v1/files/${answer.ferry.fileId}`;
      assert.deepEqual(answer.files.local, {
        name: "cube-mini.gcode",
        path: "cube-mini.gcode",
        origin: "local",
        refs: { resource, download: `${resource}/content` },
      });
      assert.equal(upload.headers.get("location"), resource);
      assert.equal(answer.done, true);
      assert.equal(answer.effectivePrint, true);
      const [submitted] = answer.ferry.jobs;
      assert.ok(submitted);
      assert.equal(submitted.state, "pending_approval", "a user's job waits for approval");
      const stored = await app.library.get(answer.ferry.fileId);
      assert.equal(
        stored?.sha256,
        createHash("sha256").update(gcode).digest("hex"),
        "the library has the bytes",
      );

      // The operator approves it; it waits for the bed.
      const pending = await api<JobBody[]>("/api/v1/jobs?state=pending_approval");
      assert.deepEqual(
        pending.map((j) => [j.id, j.owner]),
        [[submitted.id, "maker"]],
      );
      assert.equal((await api<JobBody>(`/api/v1/jobs/${submitted.id}/approve`, "POST")).state, "queued");
      await waitFor("the farm to say the job waits for the bed", async () =>
        (await job(submitted.id)).waiting?.includes("mk4-a bed not marked clear"),
      );
      await api(`/api/v1/printers/mk4-a/bed-clear`, "POST");

      // The printer prints it: printed, the part on the bed.
      const printed = await jobIn(submitted.id, "printed");
      assert.equal(printed.printer, "mk4-a");
      assert.equal(printed.progress, 1);
      assert.equal(
        mk4.files().find((f) => /^ferry\/cube-mini\.[0-9a-z]+\.gcode$/.test(f.path))?.size,
        gcode.length,
      );
      const printer = await api<{ bedClear: boolean; job: JobBody | null }>("/api/v1/printers/mk4-a");
      assert.equal(printer.bedClear, false);
      assert.equal(printer.job?.id, submitted.id);

      // Someone takes the part off and says so: completed.
      await api(`/api/v1/printers/mk4-a/bed-clear`, "POST");
      assert.equal((await job(submitted.id)).state, "completed");
      const history = await api<{ from: string | null; to: string; actor: string }[]>(
        `/api/v1/jobs/${submitted.id}/history`,
      );
      assert.deepEqual(
        history.map((h) => [h.to, h.actor]),
        [
          ["pending_approval", "maker"],
          ["queued", "olga"],
          ["scheduled", "scheduler"],
          ["uploading", `ferry@${nodeName(app.config)}`],
          ["printing", "printer mk4-a"],
          ["printed", "printer mk4-a"],
          ["completed", "olga"],
        ],
      );
      assert.equal(mk4.printer.job?.id, 1, "one print started");

      // Every change is in the event history (what GET /api/v1/events streams).
      await app.events.flush();
      const recorded = await app.events.since(0, { types: ["job.state"] }, 1000);
      assert.deepEqual(
        recorded
          .map((e) => (JSON.parse(e.data) as { payload: { id: string; to: string } }).payload)
          .filter((p) => p.id === submitted.id)
          .map((p) => p.to),
        history.map((h) => h.to),
      );
    });
  },
);
