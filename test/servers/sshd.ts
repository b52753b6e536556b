/**
 * OpenSSH sshd for tests: a throwaway server from the machine's binaries, in the foreground
 * (`sshd -D -e`), in a temp folder on a free port of 127.0.0.1, serving SFTP with `internal-sftp`.
 * It has its own ed25519 host key and logs in the test user (common.ts) by password or by a
 * generated client key. Each instance has a fresh upload folder owned by that user, optionally a
 * small tmpfs so that tests can fill the disk. `stop()` drops every open session too (sshd's
 * sessions outlive their listener); `start()` brings the server back on the same port and data.
 *
 *   const sshd = await startSshd();            // throws Unavailable when it cannot run here
 *   after(() => sshd.close());
 */
import { readFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Daemon,
  freePort,
  oneAtATime,
  requireBinary,
  run,
  tail,
  testUser,
  type TestUser,
  Unavailable,
} from "./common.ts";

export interface SshdOptions {
  /** Mount a tmpfs of this many bytes as the upload folder (for disk-full tests). */
  diskBytes?: number;
}

export interface Sshd {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly user: TestUser;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:…`. */
  readonly hostKeyFingerprint: string;
  /** The known_hosts line for this server (`[127.0.0.1]:port ssh-ed25519 AAAA…`). */
  readonly knownHostsLine: string;
  /** A known_hosts file holding `knownHostsLine`. */
  readonly knownHostsFile: string;
  /** Private key (OpenSSH format, no passphrase) the server accepts for the user. */
  readonly clientKeyFile: string;
  /** Absolute path of this instance's upload folder, owned by the user. */
  readonly uploadRoot: string;
  /** The server's recent log lines (LogLevel VERBOSE). */
  log(): string;
  /** Stops the server and drops every session (as a crash or reboot would). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same keys and files. */
  start(): Promise<void>;
  /** Stops it, unmounts a tmpfs and removes the folder. */
  close(): Promise<void>;
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const sshd = requireBinary("sshd", "openssh-server");
  const keygen = requireBinary("ssh-keygen", "openssh-client");
  const user = await testUser();
  // sshd refuses to start without its privilege separation folder.
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), "ferry-sshd-"));
  const uploadRoot = join(dir, "upload");
  let mounted = false;
  try {
    // The user reads authorized_keys and reaches the upload folder through this one.
    await chmod(dir, 0o755);
    for (const name of ["host_key", "client_key"]) {
      await run(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", `ferry-${name}`, "-f", join(dir, name)]);
    }
    const authorizedKeys = join(dir, "authorized_keys");
    await writeFile(authorizedKeys, await readFile(join(dir, "client_key.pub")), { mode: 0o644 });
    const { stdout } = await run(keygen, ["-lf", join(dir, "host_key.pub")]);
    const hostKeyFingerprint = stdout.split(" ")[1] ?? "";
    if (!hostKeyFingerprint.startsWith("SHA256:")) throw new Error(`ssh-keygen -lf printed ${stdout}`);
    const [keyType = "", keyBlob = ""] = (await readFile(join(dir, "host_key.pub"), "utf8")).split(" ");

    await mkdir(uploadRoot);
    if (options.diskBytes !== undefined) {
      const mountOptions = `size=${options.diskBytes},uid=${user.uid},gid=${user.gid},mode=0755`;
      await run("mount", ["-t", "tmpfs", "-o", mountOptions, "ferry-sshd", uploadRoot]).catch(
        (error: unknown) => {
          throw new Unavailable(`cannot mount a tmpfs: ${tail((error as Error).message)}`);
        },
      );
      mounted = true;
    }
    await chown(uploadRoot, user.uid, user.gid);

    const version = await sshdVersion(sshd);
    const config = join(dir, "sshd_config");
    const write = (port: number) =>
      writeFile(
        config,
        [
          `Port ${port}`,
          "ListenAddress 127.0.0.1",
          `HostKey ${join(dir, "host_key")}`,
          `PidFile ${join(dir, "sshd.pid")}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          "StrictModes no",
          "PasswordAuthentication yes",
          "PubkeyAuthentication yes",
          "KbdInteractiveAuthentication no",
          "UsePAM no",
          "PermitRootLogin no",
          `AllowUsers ${user.name}`,
          "Subsystem sftp internal-sftp",
          "LogLevel VERBOSE",
          // Tests open many connections at once and fail logins on purpose.
          "MaxStartups 100:30:200",
          ...(version >= 9.8 ? ["PerSourcePenalties no"] : []),
          "",
        ].join("\n"),
      );

    let daemon: Daemon | undefined;
    let port = 0;
    const launch = async () => {
      daemon = await Daemon.start(sshd, ["-D", "-e", "-f", config], { port });
    };
    // A port can be taken between our probe and sshd's bind: try a few.
    let last: unknown;
    for (let attempt = 0; attempt < 3 && daemon === undefined; attempt++) {
      port = await freePort();
      await write(port);
      await run(sshd, ["-t", "-f", config]).catch((error: unknown) => {
        throw new Unavailable(`sshd -t refused the config: ${tail((error as Error).message)}`);
      });
      await launch().catch((error: unknown) => (last = error));
    }
    if (daemon === undefined) throw last instanceof Error ? last : new Unavailable("sshd did not start");

    const knownHostsLine = `[127.0.0.1]:${port} ${keyType} ${keyBlob.trim()}`;
    const knownHostsFile = join(dir, "known_hosts");
    await writeFile(knownHostsFile, `${knownHostsLine}\n`);

    let log = "";
    const serial = oneAtATime();
    const stop = () => serial(stopNow);
    const stopNow = async () => {
      if (!daemon) return;
      const pidFile = join(dir, "sshd.pid");
      // Sessions first, while the listener is there to reap them; then any that came meanwhile.
      await killAll(await sessionsOf(pidFile));
      const late = await sessionsOf(pidFile);
      log += daemon.stderr;
      await daemon.stop();
      daemon = undefined;
      await killAll(late);
    };
    return {
      host: "127.0.0.1",
      port,
      user,
      hostKeyFingerprint,
      knownHostsLine,
      knownHostsFile,
      clientKeyFile: join(dir, "client_key"),
      uploadRoot,
      log: () => (log + (daemon?.stderr ?? "")).slice(-20_000),
      stop,
      start: () =>
        serial(async () => {
          if (!daemon) await launch();
        }),
      close: async () => {
        await stop();
        if (mounted) await run("umount", ["-l", uploadRoot]).catch(() => undefined);
        mounted = false;
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (mounted) await run("umount", ["-l", uploadRoot]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** `startSshd()`, or the reason it cannot run here (other errors are real failures). */
export async function sshdOrReason(
  options: SshdOptions = {},
): Promise<{ sshd: Sshd; reason?: undefined } | { sshd?: undefined; reason: string }> {
  try {
    return { sshd: await startSshd(options) };
  } catch (error) {
    if (error instanceof Unavailable) return { reason: error.message };
    throw error;
  }
}

async function sshdVersion(sshd: string): Promise<number> {
  // `sshd -V` prints "OpenSSH_9.2p1 …" on stderr (older ones only print usage with it).
  const output = await run(sshd, ["-V"]).then(
    (r) => r.stderr + r.stdout,
    (error: unknown) => (error as { stderr?: string }).stderr ?? "",
  );
  const match = /OpenSSH_(\d+)\.(\d+)/.exec(output);
  return match ? Number(`${match[1] ?? 0}.${match[2] ?? 0}`) : 0;
}

/** The pids of every process below the listener whose pid is in `pidFile` (its sessions). */
async function sessionsOf(pidFile: string): Promise<number[]> {
  const root = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (!Number.isInteger(root) || root <= 0) return [];
  const parents = new Map<number, number>();
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (Number.isInteger(ppid)) parents.set(Number(name), ppid);
  }
  const found: number[] = [];
  const below = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent === pid && !found.includes(child)) {
        found.push(child);
        below(child);
      }
    }
  };
  below(root);
  return found;
}

/** TERM to each pid (all ours: sessions of our sshd), KILL to those still there after 5 s. */
async function killAll(pids: number[]): Promise<void> {
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (pids.some(running) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (const pid of pids) if (running(pid)) signal(pid, "SIGKILL");
}

/** Whether the process is there and not a zombie (an orphan's zombie may never be reaped here). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
