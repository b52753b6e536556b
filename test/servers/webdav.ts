/**
 * Throwaway WebDAV servers for tests: Apache httpd (mpm_event, mod_dav + mod_dav_fs + mod_dav_lock,
 * Basic auth from an `htpasswd` file or Digest from an htdigest file) and nginx (dav + dav-ext,
 * Basic auth), each from the machine's binaries in a temp folder on a free port of 127.0.0.1, in
 * the foreground. The collection `/dav/` is the root Ferry is pointed at. Started as root, the
 * servers drop to www-data, which owns the data folder; pid, lock, log and body-temp files stay in
 * the temp folder. `stop()` and `start()` keep port and data (outage tests); `close()` removes it all.
 *
 * `diskBytes` puts the data folder (and nginx's request bodies, so that they are renamed into
 * place, not copied) on a tmpfs of that size, so a test can fill the disk. Apache can serve https
 * (`tls`, with the certificate as `caFile`). `requests()` reads the access log (method, path,
 * status, Content-Length, Content-Range), so tests can count what a client really sent.
 *
 *   const dav = await startApacheDav({ auth: "digest" });
 *   after(() => dav.close());
 */
import { createHash, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Daemon,
  freePort,
  oneAtATime,
  requireBinary,
  run,
  type Tls,
  tlsCertificate,
  Unavailable,
  writeConfig,
} from "./common.ts";

export interface DavServerOptions {
  /** Put the data folder on a tmpfs of this many bytes (disk-full tests; needs root). */
  diskBytes?: number;
}

export interface ApacheDavOptions extends DavServerOptions {
  auth?: "basic" | "digest";
  /** AuthDigestNonceLifetime in seconds (Apache's default: 300). */
  nonceLifetimeS?: number;
  /** https with a self-signed certificate for 127.0.0.1 (the handle's `caFile`). */
  tls?: boolean;
}

export interface LoggedRequest {
  method: string;
  /** Decoded URL path, e.g. /dav/a b.gcode */
  path: string;
  status: number;
  /** Content-Length of the request, when it had one. */
  length: number | undefined;
  /** Content-Range of the request, when it had one. */
  range: string | undefined;
}

export interface DavServer {
  readonly server: "apache" | "nginx";
  readonly auth: "basic" | "digest";
  /** The root collection, with a trailing slash: http://127.0.0.1:PORT/dav/ */
  readonly url: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** The certificate to trust, for an https server. */
  readonly caFile: string | undefined;
  /** The folder on disk behind `url`. */
  readonly dataDir: string;
  /**
   * The requests the server logged, oldest first, from the `since`th on. A server logs a request
   * after it answered it: with `until`, waits (up to 5 s) until the requests satisfy it.
   */
  requests(options?: {
    since?: number;
    until?: (requests: LoggedRequest[]) => boolean;
  }): Promise<LoggedRequest[]>;
  /** Stops the server (TERM); data and port are kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it and removes its folder (and its tmpfs). */
  close(): Promise<void>;
}

const USER = "ferry";
const REALM = "ferry-dav";
const APACHE_MODULES = "/usr/lib/apache2/modules";
const NGINX_DAV_EXT = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so";

const isRoot = () => process.getuid?.() === 0;

interface Layout {
  dir: string;
  /** Data and nginx's request bodies: one filesystem (a tmpfs with `diskBytes`), so bodies are renamed into place. */
  disk: string;
  www: string;
  data: string;
  logs: string;
  run: string;
  tmp: string;
  mounted: boolean;
}

/** The temp folder: disk/www/dav (data), disk/body (nginx's bodies), logs, run (pid, mutexes, lock db), tmp. */
async function layout(prefix: string, options: DavServerOptions): Promise<Layout> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const l: Layout = {
    dir,
    disk: join(dir, "disk"),
    www: join(dir, "disk", "www"),
    data: join(dir, "disk", "www", "dav"),
    logs: join(dir, "logs"),
    run: join(dir, "run"),
    tmp: join(dir, "tmp"),
    mounted: false,
  };
  live.add(l);
  try {
    for (const path of [l.disk, l.logs, l.run, l.tmp]) await mkdir(path, { recursive: true });
    if (options.diskBytes !== undefined) {
      if (!isRoot()) throw new Unavailable("a tmpfs data folder needs root (mount)");
      await run("mount", ["-t", "tmpfs", "-o", `size=${options.diskBytes},mode=0755`, "tmpfs", l.disk]);
      l.mounted = true;
    }
    await mkdir(l.data, { recursive: true });
    await mkdir(join(l.disk, "body"));
    // The workers run as www-data: they must reach the data and write where the server writes.
    await chmod(dir, 0o755);
    if (isRoot()) {
      for (const path of [l.www, l.data, join(l.disk, "body"), l.run, l.tmp, l.logs])
        await chown(path, 33, 33);
    }
    return l;
  } catch (error) {
    await removeLayout(l);
    throw error;
  }
}

async function removeLayout(l: Layout): Promise<void> {
  live.delete(l);
  if (l.mounted) await run("umount", ["-l", l.disk]).catch(() => undefined);
  await rm(l.dir, { recursive: true, force: true });
}

/** Folders (and tmpfs mounts) not closed yet: removed when the process exits without closing them. */
const live = new Set<Layout>();
process.once("exit", () => {
  for (const l of live) {
    if (l.mounted) spawnSync("umount", ["-l", l.disk]);
    rmSync(l.dir, { recursive: true, force: true });
  }
});

/** A server handle over a start function that runs the daemon on a fixed port. */
class Handle implements DavServer {
  readonly server: "apache" | "nginx";
  readonly auth: "basic" | "digest";
  readonly url: string;
  readonly port: number;
  readonly username = USER;
  readonly password: string;
  readonly caFile: string | undefined;
  readonly dataDir: string;
  readonly #layout: Layout;
  readonly #launch: () => Promise<Daemon>;
  readonly #log: string;
  #daemon: Daemon | undefined;

  constructor(
    fields: {
      server: "apache" | "nginx";
      auth: "basic" | "digest";
      port: number;
      password: string;
      caFile?: string;
    },
    l: Layout,
    launch: () => Promise<Daemon>,
  ) {
    this.server = fields.server;
    this.auth = fields.auth;
    this.port = fields.port;
    this.password = fields.password;
    this.caFile = fields.caFile;
    this.url = `${fields.caFile === undefined ? "http" : "https"}://127.0.0.1:${fields.port}/dav/`;
    this.dataDir = l.data;
    this.#layout = l;
    this.#launch = launch;
    this.#log = join(l.logs, "access.log");
  }

  readonly #oneAtATime = oneAtATime();

  start(): Promise<void> {
    return this.#oneAtATime(async () => {
      this.#daemon ??= await this.#launch();
    });
  }

  stop(): Promise<void> {
    return this.#oneAtATime(async () => {
      await this.#daemon?.stop();
      this.#daemon = undefined;
    });
  }

  async close(): Promise<void> {
    await this.stop();
    await removeLayout(this.#layout);
  }

  async requests(
    options: { since?: number; until?: (requests: LoggedRequest[]) => boolean } = {},
  ): Promise<LoggedRequest[]> {
    const { since = 0, until = () => true } = options;
    for (let waited = 0; ; waited += 20) {
      const logged = (await this.#logged()).slice(since);
      if (until(logged) || waited >= 5_000) return logged;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async #logged(): Promise<LoggedRequest[]> {
    const text = existsSync(this.#log) ? await readFile(this.#log, "utf8") : "";
    const requests: LoggedRequest[] = [];
    // Both servers log: METHOD "path" status content-length "content-range" ("-" when absent).
    for (const line of text.split("\n")) {
      const m = /^(\S+) "(.*)" (\d{3}) (\S+) "(.*)"$/.exec(line);
      if (!m) continue;
      const [, method = "", path = "", status = "", length = "-", range = "-"] = m;
      requests.push({
        method,
        path,
        status: Number(status),
        length: length === "-" ? undefined : Number(length),
        range: range === "-" || range === "" ? undefined : range,
      });
    }
    return requests;
  }
}

function apacheConf(l: Layout, port: number, options: ApacheDavOptions, tls: Tls | undefined): string {
  const mod = (name: string, file: string) => `LoadModule ${name} ${APACHE_MODULES}/${file}`;
  const digest = options.auth === "digest";
  return [
    `ServerRoot "${l.dir}"`,
    "ServerName 127.0.0.1",
    `Listen 127.0.0.1:${port}`,
    `PidFile ${l.run}/httpd.pid`,
    `DefaultRuntimeDir ${l.run}`,
    `Mutex file:${l.run} default`,
    ...(isRoot() ? ["User www-data", "Group www-data"] : []),
    `ErrorLog ${l.logs}/error.log`,
    "LogLevel warn",
    mod("mpm_event_module", "mod_mpm_event.so"),
    mod("authz_core_module", "mod_authz_core.so"),
    mod("authz_user_module", "mod_authz_user.so"),
    mod("authn_core_module", "mod_authn_core.so"),
    mod("authn_file_module", "mod_authn_file.so"),
    digest ? mod("auth_digest_module", "mod_auth_digest.so") : mod("auth_basic_module", "mod_auth_basic.so"),
    mod("dav_module", "mod_dav.so"),
    mod("dav_fs_module", "mod_dav_fs.so"),
    mod("dav_lock_module", "mod_dav_lock.so"),
    ...(tls
      ? [
          mod("socache_shmcb_module", "mod_socache_shmcb.so"),
          mod("ssl_module", "mod_ssl.so"),
          `SSLSessionCache shmcb:${l.run}/ssl_scache(512000)`,
          "SSLEngine on",
          `SSLCertificateFile ${tls.cert}`,
          `SSLCertificateKeyFile ${tls.key}`,
        ]
      : []),
    "StartServers 1",
    "ServerLimit 4",
    "ThreadsPerChild 32",
    "MaxRequestWorkers 128",
    "KeepAlive On",
    "MaxKeepAliveRequests 0",
    "Timeout 60",
    'LogFormat "%m \\"%U\\" %>s %{Content-Length}i \\"%{Content-Range}i\\"" short',
    `CustomLog ${l.logs}/access.log short`,
    `DAVLockDB ${l.run}/DAVLock`,
    "LimitRequestBody 0",
    `DocumentRoot ${l.www}`,
    `<Directory ${l.www}>`,
    "  Dav On",
    `  AuthType ${digest ? "Digest" : "Basic"}`,
    `  AuthName "${REALM}"`,
    ...(digest
      ? [
          "  AuthDigestProvider file",
          `  AuthUserFile ${l.dir}/htdigest`,
          `  AuthDigestNonceLifetime ${options.nonceLifetimeS ?? 300}`,
        ]
      : [`  AuthUserFile ${l.dir}/htpasswd`]),
    "  Require valid-user",
    "  Options None",
    "  AllowOverride None",
    "</Directory>",
    "",
  ].join("\n");
}

/** Apache httpd with mod_dav; Basic auth (htpasswd) by default, Digest with `auth: "digest"`. */
export async function startApacheDav(options: ApacheDavOptions = {}): Promise<DavServer> {
  const apache = requireBinary("apache2", "apache2");
  const auth = options.auth ?? "basic";
  if (auth === "basic") requireBinary("htpasswd", "apache2-utils");
  if (!existsSync(`${APACHE_MODULES}/mod_dav_fs.so`))
    throw new Unavailable("mod_dav_fs is missing (apache2)");
  const l = await layout("ferry-apache-dav-", options);
  try {
    const password = randomBytes(9).toString("base64url");
    if (auth === "basic") {
      // MD5 (apr1), not bcrypt: bcrypt costs milliseconds of CPU per request and would bound benchmarks.
      await run(requireBinary("htpasswd", "apache2-utils"), [
        "-bcm",
        join(l.dir, "htpasswd"),
        USER,
        password,
      ]);
    } else {
      // The htdigest file format (what `htdigest` writes, which only reads passwords from a tty).
      const ha1 = createHash("md5").update(`${USER}:${REALM}:${password}`).digest("hex");
      await writeConfig(join(l.dir, "htdigest"), `${USER}:${REALM}:${ha1}\n`);
    }
    const tls = options.tls === true ? await tlsCertificate(join(l.dir, "tls")) : undefined;
    const port = await freePort();
    const conf = join(l.dir, "httpd.conf");
    await writeConfig(conf, apacheConf(l, port, { ...options, auth }, tls));
    const launch = () => Daemon.start(apache, ["-DFOREGROUND", "-f", conf], { port });
    const fields = { server: "apache" as const, auth, port, password };
    const handle = new Handle(tls ? { ...fields, caFile: tls.cert } : fields, l, launch);
    await handle.start();
    return handle;
  } catch (error) {
    await removeLayout(l);
    throw error;
  }
}

function nginxConf(l: Layout, port: number): string {
  return [
    `load_module ${NGINX_DAV_EXT};`,
    "worker_processes 2;",
    `pid ${l.run}/nginx.pid;`,
    `error_log ${l.logs}/error.log warn;`,
    ...(isRoot() ? ["user www-data;"] : []),
    "events { worker_connections 512; }",
    "http {",
    `  log_format ferry '$request_method "$uri" $status $content_length "$http_content_range"';`,
    `  access_log ${l.logs}/access.log ferry;`,
    `  client_body_temp_path ${l.disk}/body;`,
    `  proxy_temp_path ${l.tmp}/proxy;`,
    `  fastcgi_temp_path ${l.tmp}/fastcgi;`,
    `  uwsgi_temp_path ${l.tmp}/uwsgi;`,
    `  scgi_temp_path ${l.tmp}/scgi;`,
    "  client_max_body_size 0;",
    "  keepalive_requests 100000;",
    "  server {",
    `    listen 127.0.0.1:${port};`,
    `    root ${l.www};`,
    "    location /dav/ {",
    `      auth_basic "${REALM}";`,
    `      auth_basic_user_file ${l.dir}/htpasswd;`,
    "      dav_methods PUT DELETE MKCOL COPY MOVE;",
    "      dav_ext_methods PROPFIND OPTIONS;",
    "      dav_access user:rw group:rw all:r;",
    "      create_full_put_path on;",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
}

/** nginx with dav + dav-ext (PROPFIND, OPTIONS), Basic auth. */
export async function startNginxDav(options: DavServerOptions = {}): Promise<DavServer> {
  const nginx = requireBinary("nginx", "nginx");
  const htpasswd = requireBinary("htpasswd", "apache2-utils");
  if (!existsSync(NGINX_DAV_EXT))
    throw new Unavailable("the dav-ext module is missing (libnginx-mod-http-dav-ext)");
  const l = await layout("ferry-nginx-dav-", options);
  try {
    const password = randomBytes(9).toString("base64url");
    // nginx reads bcrypt hashes only where libc's crypt does: use Apache's MD5 scheme (-m).
    await run(htpasswd, ["-bcm", join(l.dir, "htpasswd"), USER, password]);
    const port = await freePort();
    const conf = join(l.dir, "nginx.conf");
    await writeConfig(conf, nginxConf(l, port));
    const args = ["-g", "daemon off;", "-c", conf, "-p", l.dir, "-e", join(l.logs, "error.log")];
    const launch = () => Daemon.start(nginx, args, { port });
    const handle = new Handle({ server: "nginx", auth: "basic", port, password }, l, launch);
    await handle.start();
    return handle;
  } catch (error) {
    await removeLayout(l);
    throw error;
  }
}
