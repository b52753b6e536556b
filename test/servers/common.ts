/**
 * What every real server the tests start has in common: free ports on 127.0.0.1, binaries from
 * the machine (Debian packages, installed by test/servers/install.sh), a system user to log in as,
 * a TLS certificate, and a daemon that dies with the test process however it ends (even kill -9).
 *
 * Without the binaries a server's tests report themselves skipped with the reason; with
 * `FERRY_REQUIRE_SERVERS=1` (set by .ci/run) they fail instead: CI must not pass by skipping.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { waitFor } from "../support/wait.ts";

export const run = promisify(execFile);

/** Thrown by a server's start when it cannot run here; its tests skip (or fail when required). */
export class Unavailable extends Error {}

export const serversRequired = () => process.env.FERRY_REQUIRE_SERVERS === "1";

/** `test()` options for a server's tests: skipped with the reason, unless servers are required. */
export function testOptions(reason: string | undefined): { skip?: string } {
  return reason === undefined || serversRequired() ? {} : { skip: reason };
}

/** The machine's binary of that name on PATH or in the sbin folders, or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/bin"];
  for (const dir of dirs.filter(Boolean)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The binary, or Unavailable naming the Debian package it comes from. */
export function requireBinary(name: string, pkg: string): string {
  const path = findBinary(name);
  if (!path)
    throw new Unavailable(`${name} is not installed (Debian package ${pkg}; see test/servers/install.sh)`);
  return path;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts a connection on 127.0.0.1:port now. */
function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Resolves once something accepts connections on 127.0.0.1:port, rejects after `ms`. */
export async function waitForPort(port: number, ms = 30_000, exited?: () => boolean): Promise<void> {
  await waitFor(
    `something to listen on 127.0.0.1:${port}`,
    async () => {
      const open = await accepts(port);
      if (!open && exited?.()) throw new Error(`the server exited before it listened on port ${port}`);
      return open;
    },
    { timeoutMs: ms, intervalMs: 100 },
  );
}

/** Whether `promise` settled within `ms` (the timer is cleared either way, so it holds no process up). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a server's stops and starts one after another. A test that stops a server mid-transfer sees
 * the transfer fail, and may start the server again, before the stop has ended: the new daemon would
 * meet the old one on its port (the old one answers the readiness check, the new one cannot bind and
 * exits), or the start would still see the old daemon and do nothing.
 */
export function oneAtATime(): <T>(step: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (step) => {
    const next = last.then(step, step);
    last = next.catch(() => undefined);
    return next;
  };
}

/** The last lines of a program's output, on one line, for error messages. */
export function tail(text: string): string {
  return text.trim().split("\n").slice(-5).join(" | ");
}

export interface TestUser {
  name: string;
  password: string;
  uid: number;
  gid: number;
  home: string;
}

const USER = "ferry-test";
const PASSWORD = "ferry-test-pw";

/**
 * A system user for servers that log in real accounts (vsftpd, sshd): created when missing, its
 * password set. Needs root; the servers that use it need root anyway.
 */
export async function testUser(): Promise<TestUser> {
  if (process.getuid?.() !== 0)
    throw new Unavailable("starting this server needs root (it logs in a system user)");
  const exists = await run("id", ["-u", USER]).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await run(requireBinary("useradd", "passwd"), [
      "-m",
      "-d",
      `/home/${USER}`,
      "-s",
      "/bin/bash",
      USER,
    ]).catch((error: unknown) => {
      // Another test file may have made it meanwhile.
      if (!String((error as { stderr?: string }).stderr).includes("already exists")) throw error;
    });
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn(requireBinary("chpasswd", "passwd"), [], { stdio: ["pipe", "ignore", "pipe"] });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`chpasswd exited ${code}`))));
    child.stdin.end(`${USER}:${PASSWORD}\n`);
  });
  const [uid, gid] = await Promise.all([run("id", ["-u", USER]), run("id", ["-g", USER])]);
  return {
    name: USER,
    password: PASSWORD,
    uid: Number(uid.stdout.trim()),
    gid: Number(gid.stdout.trim()),
    home: `/home/${USER}`,
  };
}

export interface Tls {
  /** The self-signed certificate for 127.0.0.1, which is also the CA to trust. */
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 in `dir` (made once per folder). */
export async function tlsCertificate(dir: string): Promise<Tls> {
  const cert = join(dir, "tls.crt");
  const key = join(dir, "tls.key");
  if (!existsSync(cert)) {
    await mkdir(dir, { recursive: true });
    await run(requireBinary("openssl", "openssl"), [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
    ]);
  }
  return { cert, key };
}

/**
 * A server process in the foreground that stops when the test process ends, however it ends: a
 * watchdog shell reads our stdin and kills the server when the pipe closes.
 */
export class Daemon {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #port: number;
  #stderr = "";
  #gone = false;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.#port = port;
    child.stderr?.on(
      "data",
      (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)),
    );
    this.#exited = new Promise((resolve) =>
      child.once("exit", () => {
        this.#gone = true;
        resolve();
      }),
    );
  }

  /** Starts `command` and waits until `port` accepts connections. */
  static async start(
    command: string,
    args: string[],
    options: { port: number; env?: NodeJS.ProcessEnv; readyMs?: number },
  ): Promise<Daemon> {
    const script = [
      'exec 3<&0; "$@" </dev/null &',
      "pid=$!; ( cat <&3 >/dev/null 2>&1; kill -TERM $pid 2>/dev/null; sleep 5; kill -KILL $pid 2>/dev/null ) >/dev/null 2>&1 &",
      "wait $pid",
    ].join(" ");
    const child = spawn("bash", ["-c", script, "ferry-test-server", command, ...args], {
      stdio: ["pipe", "ignore", "pipe"],
      env: options.env ?? process.env,
    });
    const daemon = new Daemon(child, options.port);
    try {
      await waitForPort(options.port, options.readyMs ?? 30_000, () => daemon.#gone);
    } catch (error) {
      await daemon.stop();
      throw new Unavailable(`${command} did not start: ${(error as Error).message}; ${tail(daemon.#stderr)}`);
    }
    return daemon;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /**
   * Stops the server (TERM, then KILL after 5 s) and waits for it to exit and for its port to stop
   * answering: a server started again on that port right away must not meet the old one's
   * lingering workers (they answered the new one's readiness check, then went away).
   */
  async stop(): Promise<void> {
    if (this.#gone) return;
    this.#child.stdin?.end();
    if (!(await within(this.#exited, 10_000))) this.#child.kill("SIGKILL");
    await waitFor(`127.0.0.1:${this.#port} to stop answering`, async () => !(await accepts(this.#port)), {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
  }
}

/** Writes `text` to `path`, making its folder. */
export async function writeConfig(path: string, text: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, text);
}
