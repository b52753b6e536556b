/**
 * Webhooks: a JSON POST per notice, signed with the channel's secret, sent by a durable task
 * (`notify.webhook`) so that a receiver that is down gets it later with backoff, after a restart
 * too, and the farm never waits for it.
 *
 * Signature: `X-Ferry-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
 * timestamp (seconds) in `X-Ferry-Timestamp`, so a receiver can refuse old replays.
 */
import { createHmac } from "node:crypto";
import { fetch } from "undici";
import type { WebhookChannel } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import { FerryError } from "../core/errors.ts";
import type { TaskHandler } from "../tasks/runner.ts";

export const WEBHOOK_TASK = "notify.webhook";

export interface WebhookPayload {
  channel: string;
  /** The notice's id: the same for every attempt, so a receiver can drop a repeat. */
  delivery: string;
  event: string;
  /** The JSON body exactly as sent (and signed). */
  body: string;
}

/** `sha256=<hex>` of `<timestamp>.<body>`: what X-Ferry-Signature carries. */
export function signature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** 408 and 429 are worth another attempt; so is every 5xx. */
const retryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

export function webhookHandler(
  channels: ReadonlyMap<string, WebhookChannel>,
  clock: Clock,
): TaskHandler<WebhookPayload> {
  return {
    describe: (p) => ({ what: `webhook ${p.event} to ${p.channel}`, target: p.channel }),
    run: async (task, run) => {
      const p = task.payload;
      const channel = channels.get(p.channel);
      if (!channel) return { bytes: 0, skipped: `notify.channels has no webhook "${p.channel}" any more` };
      const timestamp = Math.floor(clock.now() / 1000);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "Ferry",
        "x-ferry-event": p.event,
        "x-ferry-delivery": p.delivery,
        "x-ferry-timestamp": String(timestamp),
        ...(channel.secret
          ? { "x-ferry-signature": signature(channel.secret.reveal(), timestamp, p.body) }
          : {}),
      };
      let status: number;
      let answer = "";
      try {
        const response = await fetch(channel.url, {
          method: "POST",
          headers,
          body: p.body,
          signal: AbortSignal.any([run.signal, AbortSignal.timeout(channel.timeoutS * 1000)]),
        });
        status = response.status;
        answer = (await response.text().catch(() => "")).slice(0, 200);
      } catch (error) {
        if (run.signal.aborted) throw error;
        throw new FerryError(
          "TRANSIENT",
          `webhook ${channel.name} did not answer (${(error as Error).message})`,
          { cause: error, retryable: true, subject: channel.name },
        );
      }
      if (status >= 200 && status < 300) return { bytes: Buffer.byteLength(p.body) };
      // The channel's name, never its URL: many receivers carry their secret in the path.
      const message = `webhook ${channel.name} answered ${status}${answer ? `: ${answer}` : ""}`;
      throw retryableStatus(status)
        ? new FerryError("TRANSIENT", message, { retryable: true, subject: channel.name })
        : new FerryError("PROTOCOL", message, { retryable: false, subject: channel.name });
    },
  };
}
