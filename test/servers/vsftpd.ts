/**
 * vsftpd for tests: a throwaway server from the machine's binary, in a temp folder, on a free port
 * of 127.0.0.1, logging in the system test user (PAM) chrooted into a fresh upload folder. Plain
 * FTP and explicit FTPS (AUTH TLS, not forced) share the port; passive data ports come from a
 * range of free ports. `stop()` kills the server and every session it forked (a crash, as the
 * failure tests want it); `start()` brings it back on the same port with the same files.
 *
 *   const ftp = await startVsftpd();          // throws Unavailable with the reason
 *   const ftps = await startVsftpd({ implicitTls: true });
 *   after(() => ftp.close());
 *   ftpAdapter.create({ ...ftp.login, secure: true, ca_file: ftp.tls.cert }, context);
 */
import { randomInt } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Daemon,
  freePort,
  oneAtATime,
  requireBinary,
  run,
  testUser,
  type TestUser,
  type Tls,
  tlsCertificate,
  Unavailable,
  writeConfig,
} from "./common.ts";

/** Passive data ports per server: enough for every connection of a few adapters at once. */
const PASSIVE_PORTS = 64;

export interface Vsftpd {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly user: TestUser;
  /** The self-signed certificate the server presents (also the CA to trust). */
  readonly tls: Tls;
  /** The chroot on disk: what the adapter sees as "/". */
  readonly uploadRoot: string;
  /** host, port, username and password, as the ftp adapter's options want them. */
  readonly login: { host: string; port: number; username: string; password: string };
  /** The server's own log (protocol lines included), for failure messages. */
  log(): Promise<string>;
  /**
   * Mounts a tmpfs of `bytes` at `folder` (relative to the upload root), owned by the user: a
   * disk that fills up. Unmounted by `close()`.
   */
  smallDisk(folder: string, bytes: number): Promise<string>;
  /** Kills the server and its sessions (open transfers break); the files stay. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same files. */
  start(): Promise<void>;
  /** Stops it, unmounts small disks and removes the folder. */
  close(): Promise<void>;
}

export interface VsftpdOptions {
  /** TLS from the first byte (implicit FTPS) instead of plain FTP with AUTH TLS on offer. */
  implicitTls?: boolean;
}

export async function startVsftpd(options: VsftpdOptions = {}): Promise<Vsftpd> {
  const binary = requireBinary("vsftpd", "vsftpd");
  const user = await testUser();
  const dir = await mkdtemp(join(tmpdir(), "ferry-vsftpd-"));
  try {
    await chmod(dir, 0o755);
    const uploadRoot = join(dir, "upload");
    await mkdir(uploadRoot, { mode: 0o755 });
    await chown(uploadRoot, user.uid, user.gid);
    // vsftpd's privilege separation wants an empty, root-owned folder.
    const empty = join(dir, "empty");
    await mkdir(empty, { mode: 0o755 });
    const tls = await tlsCertificate(join(dir, "tls"));
    const port = await freePort();
    const passive = await freePortRange(PASSIVE_PORTS);
    const conf = join(dir, "vsftpd.conf");
    const log = join(dir, "vsftpd.log");
    const implicit = options.implicitTls === true;
    await writeConfig(conf, config({ port, passive, uploadRoot, empty, tls, log, implicit }));
    const server = new Server(binary, conf, dir, uploadRoot, port, user, tls);
    await server.start();
    return server;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function config(o: {
  port: number;
  passive: { min: number; max: number };
  uploadRoot: string;
  empty: string;
  tls: Tls;
  log: string;
  implicit: boolean;
}): string {
  return `${[
    // Foreground, IPv4 loopback only.
    "listen=YES",
    "listen_ipv6=NO",
    "listen_address=127.0.0.1",
    `listen_port=${o.port}`,
    "background=NO",
    // Local users through PAM, chrooted into this instance's upload folder.
    "anonymous_enable=NO",
    "local_enable=YES",
    "write_enable=YES",
    "local_umask=022",
    "pam_service_name=vsftpd",
    "chroot_local_user=YES",
    "allow_writeable_chroot=YES",
    `local_root=${o.uploadRoot}`,
    `secure_chroot_dir=${o.empty}`,
    // Container-friendly: no seccomp filter, no network namespace per session.
    "seccomp_sandbox=NO",
    "isolate_network=NO",
    // Passive data connections on our free ports of 127.0.0.1.
    "pasv_enable=YES",
    "pasv_address=127.0.0.1",
    `pasv_min_port=${o.passive.min}`,
    `pasv_max_port=${o.passive.max}`,
    "connect_from_port_20=NO",
    // Explicit FTPS offered, not forced: plain FTP works on the same port.
    "ssl_enable=YES",
    "allow_anon_ssl=NO",
    "force_local_logins_ssl=NO",
    "force_local_data_ssl=NO",
    "ssl_tlsv1=YES",
    "ssl_sslv2=NO",
    "ssl_sslv3=NO",
    // Data connections must resume the control connection's TLS session (vsftpd's default).
    "require_ssl_reuse=YES",
    `implicit_ssl=${o.implicit ? "YES" : "NO"}`,
    // vsftpd's default (DES-CBC3-SHA) is refused by today's OpenSSL.
    "ssl_ciphers=HIGH",
    `rsa_cert_file=${o.tls.cert}`,
    `rsa_private_key_file=${o.tls.key}`,
    // A log to show when something fails; the protocol lines help there.
    "xferlog_enable=YES",
    "xferlog_std_format=NO",
    "dual_log_enable=NO",
    "log_ftp_protocol=YES",
    `vsftpd_log_file=${o.log}`,
    "syslog_enable=NO",
  ].join("\n")}\n`;
}

/**
 * `count` consecutive free ports of 127.0.0.1 from a random base below the system's ephemeral
 * range: inside it, a busy suite's own outgoing connections take ports at random, and 64 in a row
 * were often not to be found.
 */
async function freePortRange(count: number): Promise<{ min: number; max: number }> {
  const ephemeralStart = await ephemeralPortStart();
  const [low, high] = ephemeralStart - 10_000 > 10_000 ? [10_000, ephemeralStart] : [30_000, 60_000];
  for (let attempt = 0; attempt < 20; attempt++) {
    const min = randomInt(low, high - count);
    const ports = Array.from({ length: count }, (_, i) => min + i);
    const free = await Promise.all(ports.map(isFree));
    if (free.every(Boolean)) return { min, max: min + count - 1 };
  }
  throw new Unavailable(`found no ${count} free consecutive ports for passive FTP`);
}

/** The first port the system hands to outgoing connections (Linux: 32768 by default). */
async function ephemeralPortStart(): Promise<number> {
  const text = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8").catch(() => "");
  const start = Number(text.trim().split(/\s+/)[0]);
  return Number.isInteger(start) && start > 0 ? start : 32_768;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

class Server implements Vsftpd {
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly user: TestUser;
  readonly tls: Tls;
  readonly uploadRoot: string;
  readonly #binary: string;
  readonly #conf: string;
  readonly #dir: string;
  readonly #mounts: string[] = [];
  #daemon: Daemon | undefined;

  constructor(
    binary: string,
    conf: string,
    dir: string,
    uploadRoot: string,
    port: number,
    user: TestUser,
    tls: Tls,
  ) {
    this.#binary = binary;
    this.#conf = conf;
    this.#dir = dir;
    this.uploadRoot = uploadRoot;
    this.port = port;
    this.user = user;
    this.tls = tls;
  }

  get login() {
    return { host: this.host, port: this.port, username: this.user.name, password: this.user.password };
  }

  log(): Promise<string> {
    return readFile(join(this.#dir, "vsftpd.log"), "utf8").catch(() => "");
  }

  readonly #oneAtATime = oneAtATime();

  start(): Promise<void> {
    return this.#oneAtATime(async () => {
      this.#daemon ??= await Daemon.start(this.#binary, [this.#conf], { port: this.port });
    });
  }

  stop(): Promise<void> {
    return this.#oneAtATime(() => this.#stop());
  }

  async #stop(): Promise<void> {
    // The listener forks two processes per session, and they outlive it. Sessions are killed
    // first (open transfers break, as in a crash), then the listener through its Daemon, then
    // any session forked meanwhile. They are found by our config file, a path of this instance.
    const kill = (pids: number[]) => {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
    };
    const running = await this.#processes();
    const ours = new Set(running.map((p) => p.pid));
    kill(running.filter((p) => ours.has(p.ppid)).map((p) => p.pid));
    await this.#daemon?.stop();
    this.#daemon = undefined;
    kill((await this.#processes()).map((p) => p.pid));
  }

  /** The processes running vsftpd with this instance's config file. */
  async #processes(): Promise<{ pid: number; ppid: number }[]> {
    const found: { pid: number; ppid: number }[] = [];
    for (const name of await readdir("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
      const args = cmdline.split("\0");
      if (args[0] !== this.#binary || !args.includes(this.#conf)) continue;
      const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
      // "pid (comm) state ppid ...": the name may hold spaces, so read after its closing paren.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      found.push({ pid: Number(name), ppid });
    }
    return found;
  }

  async smallDisk(folder: string, bytes: number): Promise<string> {
    const path = join(this.uploadRoot, folder);
    await mkdir(path, { recursive: true });
    const mountBinary = requireBinary("mount", "mount");
    await run(mountBinary, [
      ...["-t", "tmpfs", "-o", `size=${bytes},uid=${this.user.uid},gid=${this.user.gid},mode=0755`],
      ...["tmpfs", path],
    ]).catch((error: unknown) => {
      throw new Unavailable(
        `cannot mount a tmpfs: ${(error as { stderr?: string }).stderr ?? String(error)}`,
      );
    });
    this.#mounts.push(path);
    return path;
  }

  async close(): Promise<void> {
    await this.stop();
    for (const path of this.#mounts.splice(0).reverse()) {
      await run(requireBinary("umount", "mount"), [path]).catch(() => undefined);
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}
