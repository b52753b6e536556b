/**
 * E-mail over SMTP (nodemailer): one message per notice and recipient, sent by a durable task
 * (`notify.email`) so that a mail server that is down gets it later, and the farm never waits.
 * A permanent refusal (5xx, a wrong password) ends the task at once, with the server's answer.
 */
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import nodemailer, { type Transporter } from "nodemailer";
import type { EmailChannel } from "../config/index.ts";
import { FerryError } from "../core/errors.ts";
import type { TaskHandler } from "../tasks/runner.ts";

export const EMAIL_TASK = "notify.email";

export interface EmailPayload {
  channel: string;
  /** The notice's id: the Message-ID's first part, the same for every attempt. */
  delivery: string;
  event: string;
  to: string;
  subject: string;
  text: string;
}

/** A CA to trust beside the system's (Node's `ca` replaces them otherwise). */
export function withSystemCas(caFile: string | undefined): string[] | undefined {
  return caFile === undefined ? undefined : [...rootCertificates, readFileSync(caFile, "utf8")];
}

export class Mailer {
  readonly #channels: ReadonlyMap<string, EmailChannel>;
  readonly #transports = new Map<string, Transporter>();

  constructor(channels: ReadonlyMap<string, EmailChannel>) {
    this.#channels = channels;
  }

  #transport(channel: EmailChannel): Transporter {
    let transport = this.#transports.get(channel.name);
    if (!transport) {
      const ca = withSystemCas(channel.caFile);
      transport = nodemailer.createTransport({
        host: channel.host,
        port: channel.port,
        secure: channel.secure,
        ...(channel.username !== undefined && channel.password
          ? { auth: { user: channel.username, pass: channel.password.reveal() } }
          : {}),
        ...(ca ? { tls: { ca } } : {}),
        connectionTimeout: channel.timeoutS * 1000,
        greetingTimeout: channel.timeoutS * 1000,
        socketTimeout: channel.timeoutS * 1000,
      });
      this.#transports.set(channel.name, transport);
    }
    return transport;
  }

  handler(): TaskHandler<EmailPayload> {
    return {
      describe: (p) => ({ what: `e-mail ${p.event} to ${p.to} through ${p.channel}`, target: p.channel }),
      run: async (task) => {
        const p = task.payload;
        const channel = this.#channels.get(p.channel);
        if (!channel)
          return { bytes: 0, skipped: `notify.channels has no e-mail channel "${p.channel}" any more` };
        try {
          await this.#transport(channel).sendMail({
            from: channel.from,
            to: p.to,
            subject: p.subject,
            text: p.text,
            messageId: `<${p.delivery}.${task.id}@ferry>`,
            headers: { "X-Ferry-Event": p.event },
          });
        } catch (error) {
          throw smtpError(channel, error);
        }
        return { bytes: Buffer.byteLength(p.text) };
      },
    };
  }

  close(): void {
    for (const transport of this.#transports.values()) transport.close();
    this.#transports.clear();
  }
}

function smtpError(channel: EmailChannel, error: unknown): FerryError {
  const e = error as { code?: string; responseCode?: number; response?: string; message?: string };
  const where = `e-mail ${channel.name} (${channel.host}:${channel.port})`;
  const detail = e.response ?? e.message ?? String(error);
  // A wrong password or a refused address does not get better by trying again.
  const permanent = e.code === "EAUTH" || (e.responseCode !== undefined && e.responseCode >= 500);
  return new FerryError(permanent ? "PROTOCOL" : "TRANSIENT", `${where}: ${detail}`, {
    cause: error,
    retryable: !permanent,
    subject: channel.name,
  });
}
