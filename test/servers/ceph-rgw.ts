/**
 * A throwaway Ceph cluster with its S3 gateway, for tests: one monitor, one OSD on memstore (the
 * objects live in RAM) and one radosgw (beast), all on 127.0.0.1 and free ports, all in the
 * foreground under `Daemon` (they die with the test process however it ends), with their config,
 * logs, sockets and data in a temp folder. Starts in about a second: the monitor's Paxos and the
 * clients' objecter are tuned from their 1 s and 5 s ticks down to milliseconds.
 *
 *   const rgw = await startCephRgw();          // Unavailable when the binaries are missing
 *   await rgw.createBucket("ferry");
 *   await rgw.stop(); await rgw.start();       // radosgw only: same port, same data
 *   await rgw.close();                         // everything stopped, the folder removed
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { randomInt, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../support/wait.ts";
import {
  Daemon,
  freePort,
  oneAtATime,
  requireBinary,
  run,
  tail,
  Unavailable,
  writeConfig,
} from "./common.ts";

const USER = "ferry";
const ACCESS_KEY = "FERRYTESTACCESSKEY01";
const SECRET_KEY = "ferry-test-secret-0123456789abcdefghij";
/** Ports the OSD may bind (public, cluster and two heartbeat messengers): a free window of these. */
const OSD_PORTS = 8;

export interface CephRgw {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Milliseconds from the call to a gateway that answers with its user created. */
  readonly startupMs: number;
  /** Creates a bucket owned by the test user (succeeds when it exists). */
  createBucket(name: string): Promise<void>;
  /** Limits the bytes a bucket (or all of the user's buckets) may hold; enforced at once. */
  setQuota(scope: { bucket: string } | { user: true }, maxBytes: number): Promise<void>;
  /** Stops radosgw only (the cluster and its data stay). */
  stop(): Promise<void>;
  /** Starts radosgw again on the same port. */
  start(): Promise<void>;
  /** Stops everything and removes the folder. */
  close(): Promise<void>;
}

interface Binaries {
  mon: string;
  osd: string;
  rgw: string;
  admin: string;
  ceph: string;
  monmaptool: string;
}

function binaries(): Binaries {
  return {
    mon: requireBinary("ceph-mon", "ceph-mon"),
    osd: requireBinary("ceph-osd", "ceph-osd"),
    rgw: requireBinary("radosgw", "radosgw"),
    admin: requireBinary("radosgw-admin", "ceph-common"),
    ceph: requireBinary("ceph", "ceph-common"),
    monmaptool: requireBinary("monmaptool", "ceph-base"),
  };
}

/** `count` consecutive free ports below Linux's ephemeral range (where outgoing connections take theirs). */
async function freePortWindow(count: number): Promise<number> {
  const listens = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = randomInt(20_000, 32_000);
    let free = true;
    for (let port = base; free && port < base + count; port++) free = await listens(port);
    if (free) return base;
  }
  throw new Unavailable(`no window of ${count} free ports for ceph-osd`);
}

function cephConf(
  dir: string,
  fsid: string,
  ports: { mon: number; osd: number; rgw: number },
  memstoreBytes: number,
): string {
  return `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${ports.mon}
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
ms bind ipv6 = false
ms bind msgr2 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0
# Map changes in milliseconds, not Paxos' 1 s rounds; ops waiting for a map retried every 0.2 s, not 5 s.
paxos propose interval = 0.01
paxos min wait = 0.001
objecter tick interval = 0.2
client mount timeout = 15
rados mon op timeout = 15
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
log to stderr = false
err to stderr = true
[client]
# Clients (and OSDs) take the cluster's fsid from this map: building one from "mon host" alone, they
# can send their first command before the monitor's map arrived, with fsid 0, and be refused.
monmap = ${dir}/monmap
[mon]
mon data = ${dir}/mon.$id
mon cluster log file = ${dir}/log/cluster.log
[osd]
# The OSD joins the CRUSH map by our command, not by its own at start: that one can reach the
# monitor before the OSD knows the cluster's fsid, and the refusal ("wrong fsid") stops it.
osd crush update on start = false
osd class update on start = false
osd data = ${dir}/osd.$id
osd objectstore = memstore
memstore device bytes = ${memstoreBytes}
ms bind port min = ${ports.osd}
ms bind port max = ${ports.osd + OSD_PORTS - 1}
[client.rgw.ferry]
rgw frontends = beast endpoint=127.0.0.1:${ports.rgw} tcp_nodelay=1
rgw data = ${dir}/rgw
rgw enable usage log = false
rgw enable ops log = false
debug rgw = 0
`;
}

export interface CephRgwOptions {
  /**
   * RAM the OSD may fill (default 4 GiB). A full cluster does not refuse writes, it holds them:
   * requests hang. Deleted objects free their space only after RGW's garbage collection (hours).
   */
  memstoreBytes?: number;
}

export async function startCephRgw(options: CephRgwOptions = {}): Promise<CephRgw> {
  const started = performance.now();
  const bin = binaries();
  const dir = await mkdtemp(join(tmpdir(), "ferry-ceph-"));
  const daemons: Daemon[] = [];
  let rgw: Daemon | undefined;
  try {
    for (const sub of ["run", "log", "mon.a", "osd.0", "rgw"]) await mkdir(join(dir, sub));
    const fsid = randomUUID();
    const monPort = await freePort();
    let rgwPort = await freePort();
    while (rgwPort === monPort) rgwPort = await freePort();
    const osdPort = await freePortWindow(OSD_PORTS);
    const conf = join(dir, "ceph.conf");
    await writeConfig(
      conf,
      cephConf(
        dir,
        fsid,
        { mon: monPort, osd: osdPort, rgw: rgwPort },
        options.memstoreBytes ?? 4 * 1024 ** 3,
      ),
    );
    const env = { ...process.env, CEPH_CONF: conf };
    // Every step is idempotent (the OSD's uuid names it), so a monitor's passing refusal is retried:
    // it answers EPERM ("problem getting command descriptions") while it holds an election, which
    // it may call again after the first, seen with four clusters starting at once.
    const step = async (what: string, command: string, args: string[]) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return (await run(command, ["-c", conf, ...args], { env, timeout: 30_000 })).stdout;
        } catch (error) {
          const stderr = (error as { stderr?: string }).stderr ?? String(error);
          if (attempt < 5 && stderr.includes("problem getting command descriptions")) continue;
          throw new Unavailable(`${what} failed: ${tail(stderr)} (logs in ${dir}/log)`);
        }
      }
    };

    const monmap = join(dir, "monmap");
    await step("monmaptool", bin.monmaptool, [
      "--create",
      "--fsid",
      fsid,
      "--add",
      "a",
      `v1:127.0.0.1:${monPort}`,
      monmap,
    ]);
    await step("ceph-mon --mkfs", bin.mon, ["--mkfs", "-i", "a", "--monmap", monmap]);
    const mon = await Daemon.start(bin.mon, ["-c", conf, "-f", "-i", "a"], { port: monPort, env });
    daemons.push(mon);
    // The monitor accepts connections before it has won its (one-member) election; a command sent
    // meanwhile is refused with EPERM ("problem getting command descriptions"), seen under load.
    await waitForLeader(join(dir, "run", "mon.a.asok"), mon);
    // The OSD's identity is made here and registered before its store is made (in parallel, they race).
    const osdUuid = randomUUID();
    const id = await step("ceph osd new", bin.ceph, ["osd", "new", osdUuid]);
    if (id.trim() !== "0") throw new Unavailable(`ceph osd new gave id ${id.trim()}, not 0`);
    await Promise.all([
      step("ceph osd crush add", bin.ceph, ["osd", "crush", "add", "osd.0", "1.0", "root=default"]),
      step("ceph-osd --mkfs", bin.osd, ["--mkfs", "-i", "0", "--osd-uuid", osdUuid]),
    ]);
    daemons.push(
      await startOsd(bin.osd, ["-c", conf, "-f", "-i", "0"], osdPort, env, join(dir, "run", "osd.0.asok")),
    );
    const rgwArgs = ["-c", conf, "-f", "-n", "client.rgw.ferry"];
    rgw = await Daemon.start(bin.rgw, rgwArgs, { port: rgwPort, env });
    let gateway = rgw;
    const serial = oneAtATime();
    await step("radosgw-admin user create", bin.admin, [
      ...["user", "create", `--uid=${USER}`, `--display-name=${USER}`],
      ...[`--access-key=${ACCESS_KEY}`, `--secret-key=${SECRET_KEY}`],
    ]);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const startupMs = Math.round(performance.now() - started);
    const region = "us-east-1";
    const client = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    });
    let closed = false;
    return {
      endpoint,
      port: rgwPort,
      region,
      accessKeyId: ACCESS_KEY,
      secretAccessKey: SECRET_KEY,
      startupMs,
      async createBucket(name) {
        try {
          await client.send(new CreateBucketCommand({ Bucket: name }));
        } catch (error) {
          if ((error as Error).name !== "BucketAlreadyOwnedByYou") throw error;
        }
      },
      async setQuota(scope, maxBytes) {
        const target =
          "bucket" in scope ? ["--quota-scope=bucket", `--bucket=${scope.bucket}`] : ["--quota-scope=user"];
        await step("radosgw-admin quota set", bin.admin, [
          "quota",
          "set",
          ...target,
          `--uid=${USER}`,
          `--max-size=${maxBytes}`,
        ]);
        await step("radosgw-admin quota enable", bin.admin, ["quota", "enable", ...target, `--uid=${USER}`]);
      },
      stop: () => serial(() => gateway.stop()),
      start: () =>
        serial(async () => {
          await gateway.stop();
          gateway = await Daemon.start(bin.rgw, rgwArgs, { port: rgwPort, env });
        }),
      async close() {
        if (closed) return;
        closed = true;
        client.destroy();
        await gateway.stop();
        await stopAll(daemons);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rgw?.stop();
    await stopAll(daemons);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Asks a Ceph daemon over its admin socket (a JSON command, NUL-terminated; a 4-byte length and JSON back). */
function askDaemon(socketPath: string, prefix: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    socket.once("connect", () => socket.end(`${JSON.stringify({ prefix })}\0`));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("error", reject);
    socket.once("close", () => {
      const answer = Buffer.concat(chunks);
      try {
        resolve(JSON.parse(answer.subarray(4, 4 + answer.readUInt32BE(0)).toString()) as unknown);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** Resolves once the monitor reports itself leader (its quorum formed), rejects after 30 s. */
async function waitForLeader(socketPath: string, mon: Daemon): Promise<void> {
  let last = "no answer yet";
  try {
    await waitFor(
      "ceph-mon to lead its quorum",
      async () => {
        const status = await askDaemon(socketPath, "mon_status").catch((error: unknown) => error);
        last =
          status instanceof Error ? status.message : `state ${String((status as { state?: unknown }).state)}`;
        return last === "state leader";
      },
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    throw new Unavailable(`${(error as Error).message} (last: ${last}); ${tail(mon.stderr)}`);
  }
}

/** ceph-osd, up and active; started again should it die on its way (up to three times). */
async function startOsd(
  command: string,
  args: string[],
  port: number,
  env: NodeJS.ProcessEnv,
  socketPath: string,
): Promise<Daemon> {
  let last = "";
  for (let attempt = 1; attempt <= 3; attempt++) {
    let daemon: Daemon;
    try {
      daemon = await Daemon.start(command, args, { port, env });
    } catch (error) {
      last = String(error);
      continue;
    }
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const status = await askDaemon(socketPath, "status").catch((error: unknown) => error);
      if (status instanceof Error) {
        last = `${status.message}; ${tail(daemon.stderr)}`;
        // Gone: its socket refuses (or is removed) once the process has exited.
        if (/ECONNREFUSED|ENOENT/.test(status.message)) break;
      } else if ((status as { state?: unknown }).state === "active") {
        return daemon;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await daemon.stop();
  }
  throw new Unavailable(`ceph-osd did not become active: ${last}`);
}

/** The OSD and the monitor, last started first (an OSD stops faster while its monitor is there). */
async function stopAll(daemons: Daemon[]): Promise<void> {
  for (const daemon of daemons.splice(0).reverse()) await daemon.stop();
}
