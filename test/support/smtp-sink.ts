/**
 * A local SMTP server in its own process, for e-mail tests: `startSmtpSink()` runs this file with
 * node; the child listens on a free port of 127.0.0.1 (smtp-server: STARTTLS with the given
 * certificate, AUTH PLAIN/LOGIN with one user), and reports every message it takes as one JSON line
 * on stdout (envelope and the raw message); the parent collects them.
 *
 *   const sink = await startSmtpSink({ tls, username: "ferry", password: "pw" });
 *   after(() => sink.close());
 *   await waitFor("one mail", () => sink.messages.length === 1);
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SMTPServer } from "smtp-server";
import { waitFor } from "./wait.ts";

export interface SinkMessage {
  from: string;
  to: string[];
  /** The message as received (headers and body). */
  raw: string;
}

export interface SmtpSink {
  readonly port: number;
  readonly messages: SinkMessage[];
  close(): Promise<void>;
}

export async function startSmtpSink(options: {
  tls: { cert: string; key: string };
  username: string;
  password: string;
}): Promise<SmtpSink> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: ["pipe", "pipe", "inherit"],
    env: {
      ...process.env,
      SINK_CERT: options.tls.cert,
      SINK_KEY: options.tls.key,
      SINK_USER: options.username,
      SINK_PASSWORD: options.password,
    },
  });
  const messages: SinkMessage[] = [];
  let port: number | undefined;
  let exited = false;
  child.once("exit", () => (exited = true));
  createInterface({ input: child.stdout }).on("line", (line) => {
    const parsed = JSON.parse(line) as { listening?: number } & Partial<SinkMessage>;
    if (parsed.listening !== undefined) port = parsed.listening;
    else messages.push(parsed as SinkMessage);
  });
  const listening = await waitFor("the SMTP sink to listen", () => {
    if (exited) throw new Error("the SMTP sink exited before it listened");
    return port;
  });
  return { port: listening, messages, close: () => stop(child) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  // Closing its stdin ends the child (and would, were this process killed).
  child.stdin?.end();
  await exited;
}

/** The child: serve until stdin closes. */
function serve(): void {
  const server = new SMTPServer({
    secure: false,
    cert: readFileSync(process.env.SINK_CERT ?? ""),
    key: readFileSync(process.env.SINK_KEY ?? ""),
    authMethods: ["PLAIN", "LOGIN"],
    // Passwords only over TLS, as a real submission server wants.
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === process.env.SINK_USER && auth.password === process.env.SINK_PASSWORD)
        callback(null, { user: auth.username });
      else callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const from = session.envelope.mailFrom;
        process.stdout.write(
          JSON.stringify({
            from: from === false ? "" : from.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString("utf8"),
          }) + "\n",
        );
        callback();
      });
    },
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.server.address();
    process.stdout.write(
      JSON.stringify({ listening: typeof address === "object" && address ? address.port : 0 }) + "\n",
    );
  });
  process.stdin.resume();
  process.stdin.on("end", () => server.close(() => process.exit(0)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
