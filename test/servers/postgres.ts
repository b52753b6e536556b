/**
 * PostgreSQL for tests (DESIGN.md §8). `FERRY_TEST_DATABASE_URL` when set (a server someone runs,
 * e.g. in CI); else a throwaway server from the machine's binaries (initdb, postgres), started in a
 * temp folder on a free port of 127.0.0.1 with fsync off, and removed afterwards. Every
 * `database()` is a new empty database, so test files (and tests) never see each other's data.
 *
 * When neither is possible the PostgreSQL tests report themselves skipped with the reason; with
 * `FERRY_REQUIRE_SERVERS=1` they fail instead (CI must not pass by skipping them).
 *
 *   const pg = await testPostgres();
 *   after(() => pg.close());
 *   test("...", pg.testOptions, async () => { ... await pg.database() ... });
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { findBinary, freePort, run, serversRequired, tail, Unavailable, within } from "./common.ts";

export interface TestPostgres {
  /** Why PostgreSQL tests cannot run here; undefined when they can. */
  readonly reason: string | undefined;
  /**
   * Options for each PostgreSQL `test()`: `{ skip: reason }` without a server (nothing under
   * FERRY_REQUIRE_SERVERS=1). Per test, not per describe: a skipped describe counts no skipped tests.
   */
  readonly testOptions: { skip?: string };
  /** The URL of a new, empty database. Rejects with the reason when there is no server. */
  database(): Promise<string>;
  /** Drops the databases made here and stops a throwaway server, removing its folder. */
  close(): Promise<void>;
}

export async function testPostgres(): Promise<TestPostgres> {
  const given = process.env.FERRY_TEST_DATABASE_URL?.trim();
  if (given) return new Databases(given, undefined);
  try {
    const server = await ThrowawayServer.start();
    return new Databases(server.url, server);
  } catch (error) {
    return unavailable(error instanceof Unavailable ? error.message : `it did not start: ${String(error)}`);
  }
}

function unavailable(why: string): TestPostgres {
  const required = serversRequired();
  const reason = `no PostgreSQL for tests: ${why} (set FERRY_TEST_DATABASE_URL to use a running server)`;
  return {
    reason,
    testOptions: required ? {} : { skip: reason },
    database: () => Promise.reject(new Error(`FERRY_REQUIRE_SERVERS=1, but ${reason}`)),
    close: () => Promise.resolve(),
  };
}

class Databases implements TestPostgres {
  readonly reason = undefined;
  readonly testOptions = {};
  readonly #adminUrl: string;
  readonly #server: ThrowawayServer | undefined;
  readonly #made: string[] = [];

  constructor(adminUrl: string, server: ThrowawayServer | undefined) {
    this.#adminUrl = adminUrl;
    this.#server = server;
  }

  async database(): Promise<string> {
    const name = `ferry_test_${process.pid}_${randomBytes(4).toString("hex")}`;
    await this.#admin(`create database ${name}`);
    this.#made.push(name);
    const url = new URL(this.#adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }

  async close(): Promise<void> {
    if (this.#server) {
      await this.#server.stop();
      return;
    }
    // WITH (FORCE): a pool a failed test left open must not keep its database alive.
    for (const name of this.#made.splice(0))
      await this.#admin(`drop database if exists ${name} with (force)`);
  }

  async #admin(statement: string): Promise<void> {
    const client = new pg.Client({ connectionString: this.#adminUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  }
}

/** A PostgreSQL server of our own, as the `postgres` user when we are root (initdb refuses root). */
class ThrowawayServer {
  readonly url: string;
  readonly #dir: string;
  readonly #child: ReturnType<typeof spawn>;
  readonly #exited: Promise<void>;

  private constructor(url: string, dir: string, child: ReturnType<typeof spawn>, exited: Promise<void>) {
    this.url = url;
    this.#dir = dir;
    this.#child = child;
    this.#exited = exited;
  }

  static async start(): Promise<ThrowawayServer> {
    const initdb = findBinary("initdb");
    const postgres = findBinary("postgres");
    if (!initdb || !postgres) throw new Unavailable("initdb and postgres are not on PATH");
    const asUser = await runAs();
    const dir = await mkdtemp(join(tmpdir(), "ferry-pg-"));
    try {
      if (asUser) await chown(dir, asUser.uid, asUser.gid);
      const data = join(dir, "data");
      const prefix = asUser ? ["runuser", "-u", asUser.name, "--"] : [];
      const [cmd = "", ...args] = [
        ...prefix,
        initdb,
        ...["-D", data, "-U", "ferry", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
      ];
      await run(cmd, args, { timeout: 120_000 }).catch((error: unknown) => {
        throw new Unavailable(
          `initdb failed: ${tail((error as { stderr?: string }).stderr ?? String(error))}`,
        );
      });
      // A port can be taken between our probe and the server's bind: try a few.
      let last = "";
      for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        const started = await ThrowawayServer.#launch(prefix, postgres, data, dir, port);
        if (started instanceof ThrowawayServer) return started;
        last = started;
      }
      throw new Unavailable(`postgres did not start: ${last}`);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  static async #launch(
    prefix: string[],
    postgres: string,
    data: string,
    dir: string,
    port: number,
  ): Promise<ThrowawayServer | string> {
    // The watchdog reads our stdin: when this process ends, however it ends (even kill -9), the
    // pipe closes and the server is stopped and its folder removed. 127.0.0.1 only.
    const script = [
      'exec 3<&0; "$1" -D "$2" -k "$3" -p "$4" -c listen_addresses=127.0.0.1 -c fsync=off',
      "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB </dev/null &",
      "pid=$!; ( cat <&3 >/dev/null 2>&1; kill -INT $pid 2>/dev/null ) &",
      'wait $pid; rm -rf "$3"',
    ].join(" ");
    const command = [...prefix, "bash", "-c", script, "ferry-pg", postgres, data, dir, String(port)];
    const child = spawn(command[0] ?? "bash", command.slice(1), { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const state = { exited: false };
    const exit = new Promise<void>((resolve) =>
      child.once("exit", () => {
        state.exited = true;
        resolve();
      }),
    );
    const url = `postgres://ferry@127.0.0.1:${port}/postgres`;
    const deadline = Date.now() + 30_000;
    while (!state.exited && Date.now() < deadline) {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.end();
        return new ThrowawayServer(url, dir, child, exit);
      } catch {
        await client.end().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    child.stdin.end();
    await within(exit, 5_000);
    return tail(stderr) || "it did not answer within 30 s";
  }

  async stop(): Promise<void> {
    this.#child.stdin?.end();
    if (!(await within(this.#exited, 15_000))) this.#child.kill("SIGKILL");
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/** The user to run the server as: none when we are not root, else the `postgres` user. */
async function runAs(): Promise<{ name: string; uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (!findBinary("runuser")) throw new Unavailable("running as root and runuser is missing");
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
    return { name: "postgres", uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new Unavailable("running as root, and there is no postgres user to run initdb as");
  }
}
