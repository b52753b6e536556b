/**
 * OPC UA end to end, with real processes and real sockets: the farm app as `ferry serve` builds it
 * over a PrusaLink simulator whose printer time runs fast, mirroring into a lab's OPC UA server
 * that runs in a process of its own (test/support/opcua-lab-server.ts, node-opcua, none of
 * Ferry's code), over SignAndEncrypt with a username. A separate client reads the values back.
 * The lab server is killed mid-print and started again empty: the print's final state is there
 * once it is back. Ferry's own OPC UA server is browsed, subscribed to and called by a separate
 * client: an operator pauses, resumes, cancels and marks the bed clear; a viewer is refused the
 * methods, anonymous and wrong passwords are refused the session.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  AttributeIds,
  BrowseDirection,
  ClientMonitoredItem,
  ClientSubscription,
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  StatusCodes,
  TimestampsToReturn,
  UserTokenType,
  type ClientSession,
  type DataValue,
  type UserIdentityInfo,
} from "node-opcua-client";
import { createApp, type App } from "../src/app.ts";
import { parseConfig } from "../src/config/index.ts";
import { silentLogger } from "../src/core/logger.ts";
import { deviceKinds } from "../src/devices/devices.ts";
import type { Job, JobFile } from "../src/farm/jobs.ts";
import { OpcuaMirror } from "../src/opcua/mirror.ts";
import { printerValues } from "../src/opcua/values.ts";
import { systemClock } from "../src/core/clock.ts";
import { PrusaLinkSim } from "../src/sim/prusalink/index.ts";
import { localAdapter } from "../src/storage/local/local.ts";
import { folderJobFiles } from "./support/farm-files.ts";
import { freePort, run } from "./servers/common.ts";
import { waitFor } from "./support/wait.ts";
import { estimatedGcode } from "./support/gcode.ts";

const PASSWORD = "opcua-e2e";
/** Printer time runs this many times faster: a 100-minute print takes 10 s. */
const SPEED = 600;
const NAMESPACE = "urn:ferry:printers";

/** The lab's OPC UA server, in its own process. */
class LabServer {
  readonly #child: ChildProcess;
  readonly exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  static async start(port: number, pki: string, args: string[]): Promise<LabServer> {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "support/opcua-lab-server.ts"), String(port), pki, ...args],
      {
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    const server = new LabServer(child);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    let gone = false;
    void server.exited.then(() => (gone = true));
    await waitFor(
      "the lab's OPC UA server to be ready",
      () => {
        if (gone) throw new Error(`the lab's OPC UA server exited: ${output}`);
        return output.includes("ready");
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    return server;
  }

  /** A crash: nothing is saved, the nodes and values are gone. */
  async kill(): Promise<void> {
    this.#child.kill("SIGKILL");
    await this.exited;
  }
}

async function session(
  endpoint: string,
  identity?: UserIdentityInfo,
  secure = false,
): Promise<{ session: ClientSession; close(): Promise<void> }> {
  const client = OPCUAClient.create({
    endpointMustExist: false,
    ...(secure
      ? { securityMode: MessageSecurityMode.SignAndEncrypt, securityPolicy: SecurityPolicy.Basic256Sha256 }
      : {}),
    connectionStrategy: { maxRetry: 3, initialDelay: 100 },
  });
  await client.connect(endpoint);
  try {
    const opened = await client.createSession(identity);
    let closed = false;
    return {
      session: opened,
      close: async () => {
        if (closed) return;
        closed = true;
        await opened.close().catch(() => undefined);
        await client.disconnect();
      },
    };
  } catch (error) {
    await client.disconnect();
    throw error;
  }
}

async function nsIndex(s: ClientSession, uri: string): Promise<number> {
  const index = (await s.readNamespaceArray()).indexOf(uri);
  assert.ok(index >= 0, `the server has the namespace ${uri}`);
  return index;
}

async function read(s: ClientSession, nodeId: string): Promise<DataValue> {
  return s.read({ nodeId, attributeId: AttributeIds.Value });
}

describe("OPC UA: the mirror into a lab's server and Ferry's own server", { timeout: 240_000 }, () => {
  let dir: string;
  let sim: PrusaLinkSim;
  let app: App;
  let lab: LabServer | undefined;
  let labPort: number;
  let serverPort: number;
  const labPki = () => join(dir, "lab-pki");
  const labArgs = ["--add-nodes", "--user", "lab:lab-secret"];
  /** job.progress events: progress in percent → when Ferry published it. */
  const published = new Map<number, number>();
  const file = (id: string): JobFile & { id: string } => ({ id, name: id, sha256: null });

  const state = (id: string, wanted: Job["state"]) =>
    waitFor(`job ${id} to be ${wanted}`, async () => {
      const job = await app.farm.get(id);
      return job.state === wanted ? job : undefined;
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-opcua-"));
    const library = join(dir, "library");
    await mkdir(library);
    await writeFile(join(library, "bracket.gcode"), estimatedGcode(100, "a 100-minute bracket"));
    await writeFile(join(library, "vase.gcode"), estimatedGcode(600, "a ten-hour vase"));
    sim = await PrusaLinkSim.start({ password: PASSWORD, speed: SPEED });
    labPort = await freePort();
    serverPort = await freePort();
    lab = await LabServer.start(labPort, labPki(), labArgs);
    const config = parseConfig(
      `devices:
  mk4-a: { type: prusalink, url: "${sim.url}", password: "${PASSWORD}", farm: true, model: MK4, camera_url: "http://cam.local/mk4-a.jpg" }
farm:
  interval: 100ms
opcua:
  mirror:
    endpoint: opc.tcp://127.0.0.1:${labPort}
    security_mode: SignAndEncrypt
    security_policy: Basic256Sha256
    username: lab
    password: lab-secret
    interval: 200ms
  server:
    port: ${serverPort}
    security_modes: [None, SignAndEncrypt]
`,
      join(dir, "ferry.yaml"),
      { deviceKinds, env: {} },
    );
    const adapter = localAdapter.create(
      { path: library },
      { name: "library", logger: silentLogger, baseDir: dir },
    );
    app = await createApp(config, { logger: silentLogger, jobFiles: folderJobFiles(adapter) });
    app.bus.on("job.progress", ({ payload }) => {
      const percent = Math.round(payload.progress * 1000) / 10;
      if (!published.has(percent)) published.set(percent, performance.now());
    });
    await app.stored.accounts.addUser({ name: "olga", role: "operator", password: "olga-operator" });
    await app.stored.accounts.addUser({ name: "vic", role: "viewer", password: "vic-the-viewer" });
    await app.start();
  });

  after(async () => {
    await app.stop();
    await lab?.kill();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("a print's progress reaches the lab's server within 2 s; its final state survives the server's restart", async (t) => {
    const reader = await session(`opc.tcp://127.0.0.1:${labPort}`, {
      type: UserTokenType.UserName,
      userName: "lab",
      password: "lab-secret",
    });
    t.after(() => reader.close());
    const ns = await nsIndex(reader.session, NAMESPACE);
    const node = (path: string) => `ns=${ns};s=mk4-a/${path}`;
    // The folder is made by the mirror (the server starts empty) and filled once the printer is seen.
    const model = await waitFor("the mirror to make mk4-a's folder and write its model", async () => {
      const value = await read(reader.session, node("model"));
      return value.statusCode.isGood() && value.value.value === "MK4" ? value : undefined;
    });
    assert.equal(model.value.value, "MK4");
    assert.equal((await read(reader.session, node("camera_url"))).value.value, "http://cam.local/mk4-a.jpg");
    assert.equal((await read(reader.session, node("url"))).value.value, sim.url);
    assert.equal((await read(reader.session, node("state"))).value.value, "idle");

    // Progress, as a subscriber on the lab's server sees it.
    const seen = new Map<number, number>();
    const subscription = ClientSubscription.create(reader.session, {
      requestedPublishingInterval: 50,
      requestedLifetimeCount: 1000,
      requestedMaxKeepAliveCount: 20,
      publishingEnabled: true,
    });
    const item = ClientMonitoredItem.create(
      subscription,
      { nodeId: node("job/progress"), attributeId: AttributeIds.Value },
      { samplingInterval: 50, queueSize: 100, discardOldest: true },
      TimestampsToReturn.Both,
    );
    item.on("changed", (value: DataValue) => {
      const percent = value.value.value as number;
      if (!seen.has(percent)) seen.set(percent, performance.now());
    });

    await app.farm.markBedClear("mk4-a", "olga");
    const [job] = await app.farm.submit({ file: file("bracket.gcode"), owner: "olga", role: "operator" });
    assert.ok(job);
    await waitFor(
      "ten progress values to reach the lab's server",
      () => [...seen.keys()].filter((p) => p > 0).length >= 10,
    );
    const latencies = [...published]
      .filter(([percent]) => percent > 0 && seen.has(percent))
      .map(([percent, at]) => (seen.get(percent) ?? 0) - at);
    assert.ok(
      latencies.length >= 5,
      `published progress values were seen on the lab's server (${latencies.length})`,
    );
    const worst = Math.max(...latencies);
    assert.ok(worst < 2000, `a progress value took ${worst.toFixed(0)} ms to reach the lab's server`);
    assert.equal((await read(reader.session, node("state"))).value.value, "printing");
    assert.equal((await read(reader.session, node("job/file"))).value.value, "bracket.gcode");
    const bed = (await read(reader.session, node("bed/target"))).value.value as number;
    assert.equal(bed, 60, "the bed's target temperature, from the printer's own report");
    await subscription.terminate();
    await reader.close();

    // The lab's server crashes mid-print and comes back empty; the print finishes meanwhile.
    await lab?.kill();
    assert.equal((await app.farm.get(job.id)).state, "printing", "the print still ran when the server went");
    await state(job.id, "printed");
    const away = app.opcua?.mirror?.status();
    assert.ok(away, "the app has a mirror");
    assert.equal(away.connected, false, "the mirror knows the server is away");
    assert.ok(away.pending > 0, "the newest values wait for the server");
    lab = await LabServer.start(labPort, labPki(), labArgs);
    const back = await session(`opc.tcp://127.0.0.1:${labPort}`, {
      type: UserTokenType.UserName,
      userName: "lab",
      password: "lab-secret",
    });
    const ns2 = await nsIndex(back.session, NAMESPACE);
    const after = (path: string) => `ns=${ns2};s=mk4-a/${path}`;
    await waitFor(
      "the final state to be written into the restarted server",
      async () => (await read(back.session, after("job/progress"))).value.value === 100,
      {
        detail: async () =>
          `progress: ${String((await read(back.session, after("job/progress"))).value.value)}`,
      },
    );
    assert.equal((await read(back.session, after("state"))).value.value, "finished");
    assert.equal((await read(back.session, after("job/file"))).value.value, "bracket.gcode");
    assert.equal((await read(back.session, after("job/time_left"))).value.value, 0);
    await back.close();
    const sorted = latencies.toSorted((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
    const max = sorted.at(-1) ?? 0;
    const status = app.opcua?.mirror?.status();
    console.log(
      `# mirror latency (event → lab subscriber): ${latencies.length} progress values, median ${median.toFixed(0)} ms, max ${max.toFixed(0)} ms; ${status?.written ?? 0} writes`,
    );
    assert.deepEqual(status?.problems, {});
  });

  test("Ferry's OPC UA server: browsed, subscribed and called by an operator; viewers, anonymous and wrong passwords refused", async (t) => {
    const endpoint = `opc.tcp://127.0.0.1:${serverPort}`;
    await assert.rejects(session(endpoint), "an anonymous session is refused");
    await assert.rejects(
      session(endpoint, { type: UserTokenType.UserName, userName: "olga", password: "not-her-password" }),
      "a wrong password is refused",
    );

    const olga = await session(endpoint, {
      type: UserTokenType.UserName,
      userName: "olga",
      password: "olga-operator",
    });
    t.after(() => olga.close());
    const s = olga.session;
    const ns = await nsIndex(s, NAMESPACE);
    const machinery = await nsIndex(s, "http://opcfoundation.org/UA/Machinery/");
    const di = await nsIndex(s, "http://opcfoundation.org/UA/DI/");
    // Objects → Machines (OPC 40001-1) → mk4-a, with its identification add-in.
    const objects = await s.browse({
      nodeId: "i=85",
      browseDirection: BrowseDirection.Forward,
      resultMask: 63,
    });
    const machines = objects.references?.find((r) => r.browseName.name === "Machines");
    assert.equal(machines?.browseName.namespaceIndex, machinery);
    assert.ok(machines);
    const listed = await s.browse({
      nodeId: machines.nodeId,
      browseDirection: BrowseDirection.Forward,
      resultMask: 63,
    });
    const printer = listed.references?.find((r) => r.browseName.name === "mk4-a");
    assert.ok(printer, "mk4-a is under Machines");
    const [identification] = await s.translateBrowsePath([
      {
        startingNode: printer.nodeId,
        relativePath: {
          elements: [
            {
              referenceTypeId: "i=33",
              isInverse: false,
              includeSubtypes: true,
              targetName: { namespaceIndex: di, name: "Identification" },
            },
            {
              referenceTypeId: "i=33",
              isInverse: false,
              includeSubtypes: true,
              targetName: { namespaceIndex: di, name: "Model" },
            },
          ],
        },
      },
    ]);
    const modelId = identification?.targets?.[0]?.targetId.toString();
    assert.ok(modelId, "mk4-a has Identification/Model");
    assert.equal(((await read(s, modelId)).value.value as { text: string }).text, "MK4");
    assert.equal((await read(s, `ns=${ns};s=mk4-a/model`)).value.value, "MK4");

    // The bed still holds the bracket: the operator marks it clear over OPC UA, the job completes.
    const call = (method: string, on: ClientSession = s) =>
      on.call({ objectId: `ns=${ns};s=mk4-a`, methodId: `ns=${ns};s=mk4-a/${method}`, inputArguments: [] });
    const printed = (await app.farm.list({ state: "printed" }))[0];
    assert.ok(printed);
    assert.equal((await call("MarkBedClear")).statusCode.name, "Good");
    assert.equal((await app.farm.get(printed.id)).state, "completed");

    // A long print: subscribed to, paused, resumed and cancelled over OPC UA.
    const [vase] = await app.farm.submit({ file: file("vase.gcode"), owner: "olga", role: "operator" });
    assert.ok(vase);
    await state(vase.id, "printing");
    const subscription = ClientSubscription.create(s, {
      requestedPublishingInterval: 50,
      requestedLifetimeCount: 1000,
      requestedMaxKeepAliveCount: 20,
      publishingEnabled: true,
    });
    const values: number[] = [];
    const item = ClientMonitoredItem.create(
      subscription,
      { nodeId: `ns=${ns};s=mk4-a/job/progress`, attributeId: AttributeIds.Value },
      { samplingInterval: 50, queueSize: 100, discardOldest: true },
      TimestampsToReturn.Both,
    );
    item.on("changed", (value: DataValue) => values.push(value.value.value as number));
    await waitFor(
      "the subscriber to see the print's progress move",
      () => new Set(values.filter((v) => v > 0)).size >= 2,
    );
    const queue = await read(s, `ns=${ns};s=Ferry/Jobs/${vase.id}/state`);
    assert.equal(queue.value.value, "printing");

    // Over an encrypted channel too.
    const sealed = await session(
      endpoint,
      { type: UserTokenType.UserName, userName: "olga", password: "olga-operator" },
      true,
    );
    t.after(() => sealed.close());
    assert.equal((await read(sealed.session, `ns=${ns};s=mk4-a/state`)).value.value, "printing");
    await sealed.close();

    // A viewer may read but not act.
    const vic = await session(endpoint, {
      type: UserTokenType.UserName,
      userName: "vic",
      password: "vic-the-viewer",
    });
    t.after(() => vic.close());
    assert.equal((await read(vic.session, `ns=${ns};s=mk4-a/state`)).value.value, "printing");
    assert.equal((await call("Pause", vic.session)).statusCode.value, StatusCodes.BadUserAccessDenied.value);
    assert.equal((await app.farm.get(vase.id)).state, "printing");

    assert.equal((await call("Pause")).statusCode.name, "Good");
    await state(vase.id, "paused");
    await waitFor(
      "the server to show the printer paused",
      async () => (await read(s, `ns=${ns};s=mk4-a/state`)).value.value === "paused",
    );
    assert.equal(
      (await call("Pause")).statusCode.value,
      StatusCodes.BadInvalidState.value,
      "a paused print cannot be paused",
    );
    assert.equal((await call("Resume")).statusCode.name, "Good");
    await state(vase.id, "printing");
    assert.equal((await call("Cancel")).statusCode.name, "Good");
    await state(vase.id, "cancelled");
    const history = await app.farm.history(vase.id);
    assert.ok(
      history.some((h) => h.to === "cancelling" && h.actor === "olga (OPC UA)"),
      "the cancel is recorded as olga's",
    );
    // Demoted while signed in: refused from the next call on.
    await app.stored.accounts.updateUser("olga", { role: "viewer" });
    assert.equal((await call("MarkBedClear")).statusCode.value, StatusCodes.BadUserAccessDenied.value);
    await app.stored.accounts.updateUser("olga", { role: "operator" });
    await subscription.terminate();
  });
});

describe("OPC UA mirror into a server that lets no client make nodes", { timeout: 120_000 }, () => {
  test("writes the nodes the lab laid out, and names each one it lacks", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-opcua-fixed-"));
    const port = await freePort();
    const lab = await LabServer.start(port, join(dir, "pki"), [
      "--provision",
      "mk4-a",
      "--omit",
      "camera_url,job/time_left",
    ]);
    const mirror = new OpcuaMirror({
      config: {
        endpoint: `opc.tcp://127.0.0.1:${port}`,
        securityMode: "None",
        securityPolicy: "None",
        identity: { type: "anonymous" },
        namespace: NAMESPACE,
        folder: [],
        names: {},
        intervalS: 1,
      },
      dir: join(dir, "opcua"),
      clock: systemClock,
      logger: silentLogger,
    });
    try {
      mirror.start();
      const printer = {
        name: "mk4-a",
        model: "MK4",
        cameraUrl: "http://cam.local/a.jpg",
        connection: "online" as const,
        activity: "idle",
        temperatures: [{ name: "bed", actual: 24.5, target: 0 }],
        observedAt: Date.now(),
        drivenBy: "here",
        job: null,
        bedClear: true,
      };
      mirror.update({
        at: Date.now(),
        printers: new Map([
          [
            "mk4-a",
            { printer, values: printerValues(printer, "http://mk4-a.local", Date.now()), mine: true },
          ],
        ]),
        jobs: [],
      });
      const status = await waitFor("the mirror to write what it can", () => {
        const now = mirror.status();
        return now.connected && now.pending === 0 && Object.keys(now.problems).length === 2 ? now : undefined;
      });
      assert.deepEqual(Object.keys(status.problems).sort(), ["mk4-a/camera_url", "mk4-a/job/time_left"]);
      assert.match(
        status.problems["mk4-a/camera_url"] ?? "",
        /does not let Ferry make it: .*BadServiceUnsupported/,
      );
      assert.equal(status.written, 11);
      const reader = await session(`opc.tcp://127.0.0.1:${port}`);
      const ns = await nsIndex(reader.session, NAMESPACE);
      const [path] = await reader.session.translateBrowsePath([
        {
          startingNode: "i=85",
          relativePath: {
            elements: ["mk4-a", "bed", "actual"].map((name) => ({
              referenceTypeId: "i=33",
              isInverse: false,
              includeSubtypes: true,
              targetName: { namespaceIndex: ns, name },
            })),
          },
        },
      ]);
      const id = path?.targets?.[0]?.targetId.toString();
      assert.ok(id);
      assert.match(id, /;i=\d+$/, "the lab's own (numeric) node, found by its browse path");
      assert.equal((await read(reader.session, id)).value.value, 24.5);
      await reader.close();
    } finally {
      await mirror.stop();
      await lab.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("OPC UA mirror signing in with an X.509 user certificate", { timeout: 120_000 }, () => {
  test("writes over a signed channel as the certificate's user", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-opcua-x509-"));
    const port = await freePort();
    const certificateFile = join(dir, "user.crt");
    const privateKeyFile = join(dir, "user.key");
    // node-opcua's PKI points OPENSSL_CONF at a file of its own (a temp folder of an earlier test).
    const { OPENSSL_CONF: _conf, ...env } = process.env;
    await run(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=ferry-mirror"],
        ...[
          "-addext",
          "subjectAltName=URI:urn:ferry:mirror",
          "-keyout",
          privateKeyFile,
          "-out",
          certificateFile,
        ],
      ],
      { env },
    );
    const lab = await LabServer.start(port, join(dir, "pki"), ["--add-nodes", "--x509"]);
    const mirror = new OpcuaMirror({
      config: {
        endpoint: `opc.tcp://127.0.0.1:${port}`,
        securityMode: "Sign",
        securityPolicy: "Aes128_Sha256_RsaOaep",
        identity: { type: "certificate", certificateFile, privateKeyFile },
        namespace: NAMESPACE,
        folder: ["Lab"],
        names: { "mk4-a": "Printer1" },
        intervalS: 1,
      },
      dir: join(dir, "opcua"),
      clock: systemClock,
      logger: silentLogger,
    });
    try {
      await assert.rejects(session(`opc.tcp://127.0.0.1:${port}`), "the lab refuses anonymous sessions");
      mirror.start();
      const printer = {
        name: "mk4-a",
        model: "MK4",
        cameraUrl: null,
        connection: "online" as const,
        activity: "idle",
        temperatures: [],
        observedAt: Date.now(),
        drivenBy: "here",
        job: null,
        bedClear: true,
      };
      mirror.update({
        at: Date.now(),
        printers: new Map([
          [
            "mk4-a",
            { printer, values: printerValues(printer, "http://mk4-a.local", Date.now()), mine: true },
          ],
        ]),
        jobs: [],
      });
      const status = await waitFor(
        "the mirror to write every value",
        () => {
          const now = mirror.status();
          return now.connected && now.pending === 0 ? now : undefined;
        },
        { detail: () => JSON.stringify(mirror.status()) },
      );
      assert.equal(status.written, 13);
      assert.deepEqual(status.problems, {});
    } finally {
      await mirror.stop();
      await lab.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("OPC UA mirror to a server that is not there", () => {
  test("takes values without waiting, says why it cannot write them, and stops at once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-opcua-away-"));
    const port = await freePort();
    const mirror = new OpcuaMirror({
      config: {
        endpoint: `opc.tcp://127.0.0.1:${port}`,
        securityMode: "None",
        securityPolicy: "None",
        identity: { type: "anonymous" },
        namespace: NAMESPACE,
        folder: [],
        names: {},
        intervalS: 1,
      },
      dir: join(dir, "opcua"),
      clock: systemClock,
      logger: silentLogger,
    });
    try {
      mirror.start();
      const printer = {
        name: "mk4-a",
        model: null,
        cameraUrl: null,
        connection: "online" as const,
        activity: "idle",
        temperatures: [],
        observedAt: Date.now(),
        drivenBy: "here",
        job: null,
        bedClear: true,
      };
      for (let i = 0; i < 100; i++)
        mirror.update({
          at: Date.now(),
          printers: new Map([
            ["mk4-a", { printer, values: printerValues(printer, `#${i}`, Date.now()), mine: true }],
          ]),
          jobs: [],
        });
      const status = await waitFor("the mirror to say why it cannot write", () => {
        const now = mirror.status();
        return now.error ? now : undefined;
      });
      assert.equal(status.connected, false);
      assert.match(
        status.error ?? "",
        new RegExp(`cannot be established with server opc.tcp://127.0.0.1:${port}`),
      );
      assert.equal(status.pending, 13, "one value per node waits: the newest");
      const stopping = performance.now();
      await mirror.stop();
      assert.ok(performance.now() - stopping < 1000, "stopping does not wait for the server");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
