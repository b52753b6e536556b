/**
 * Mosquitto (the MQTT broker, Debian package mosquitto) for tests: a throwaway broker in a temp
 * folder on a free port of 127.0.0.1, TLS only (a self-signed certificate for 127.0.0.1, also the
 * CA to trust), anonymous clients refused, one user from a password file made by mosquitto_passwd.
 * It keeps retained messages and persistent sessions in its folder, so `stop()` then `start()` (a
 * broker restart) loses neither.
 *
 *   const broker = await startMosquitto();   // throws Unavailable with the reason
 *   after(() => broker.close());
 *   mqtt.connect(broker.url, { ca: readFileSync(broker.tls.cert), ...broker.login });
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Daemon,
  freePort,
  oneAtATime,
  requireBinary,
  run,
  tlsCertificate,
  writeConfig,
  type Tls,
} from "./common.ts";

export interface Mosquitto {
  /** mqtts://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly tls: Tls;
  readonly login: { username: string; password: string };
  /** The broker's own log lines so far, for failure messages. */
  readonly log: () => string;
  /** Stops the broker (TERM: it saves its sessions and retained messages). */
  stop(): Promise<void>;
  /** Starts it again on the same port with what it saved. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const USER = "ferry";
const PASSWORD = "ferry-mqtt-pw";

export async function startMosquitto(): Promise<Mosquitto> {
  const binary = requireBinary("mosquitto", "mosquitto");
  const passwd = requireBinary("mosquitto_passwd", "mosquitto");
  const dir = await mkdtemp(join(tmpdir(), "ferry-mosquitto-"));
  try {
    await chmod(dir, 0o755);
    const tls = await tlsCertificate(join(dir, "tls"));
    const passwords = join(dir, "passwd");
    await run(passwd, ["-c", "-b", passwords, USER, PASSWORD]);
    await chmod(passwords, 0o600);
    const port = await freePort();
    const conf = join(dir, "mosquitto.conf");
    await writeConfig(
      conf,
      [
        // Stay the user that runs the test (as root it would switch to "mosquitto", who cannot read these files).
        ...(process.getuid?.() === 0 ? ["user root"] : []),
        "persistence true",
        `persistence_location ${dir}/`,
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "per_listener_settings false",
        "allow_anonymous false",
        `password_file ${passwords}`,
        `listener ${port} 127.0.0.1`,
        `certfile ${tls.cert}`,
        `keyfile ${tls.key}`,
        "",
      ].join("\n"),
    );
    let daemon = await Daemon.start(binary, ["-c", conf], { port });
    const serial = oneAtATime();
    return {
      url: `mqtts://127.0.0.1:${port}`,
      port,
      tls,
      login: { username: USER, password: PASSWORD },
      log: () => daemon.stderr,
      stop: () => serial(() => daemon.stop()),
      start: () =>
        serial(async () => {
          await daemon.stop();
          daemon = await Daemon.start(binary, ["-c", conf], { port });
        }),
      close: async () => {
        await daemon.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
