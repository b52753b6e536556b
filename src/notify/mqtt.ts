/**
 * MQTT (mqtt.js): notices on topics per job and per printer, and each farm printer's state,
 * retained, so a dashboard or a lab's control system that subscribes later sees it at once.
 *
 *   <prefix>/jobs/<job id>/events          a notice about a job (JSON)
 *   <prefix>/printers/<name>/events        a notice about a printer without a job
 *   <prefix>/devices/<name>/events         a notice about a device
 *   <prefix>/printers/<name>/state         retained: connection, activity, raw state, time
 *
 * The client reconnects by itself; what is published while the broker is away waits in the
 * client's memory and goes out on reconnect (never blocking the farm). It is not kept across a
 * restart of Ferry: the printer state is published again with the next change.
 */
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { MqttChannel } from "../config/index.ts";
import type { Logger } from "../core/logger.ts";
import { withSystemCas } from "./email.ts";

/** How long a stop waits for queued messages to leave before it cuts the connection. */
const CLOSE_MS = 2_000;

export class MqttPublisher {
  readonly channel: MqttChannel;
  readonly #client: MqttClient;
  readonly #logger: Logger;
  #lastError: string | undefined;

  constructor(channel: MqttChannel, logger: Logger) {
    this.channel = channel;
    this.#logger = logger.child({ channel: channel.name });
    const ca = withSystemCas(channel.caFile);
    const options: IClientOptions = {
      reconnectPeriod: 2_000,
      connectTimeout: 10_000,
      clean: true,
      ...(channel.clientId === undefined ? {} : { clientId: channel.clientId }),
      ...(channel.username === undefined ? {} : { username: channel.username }),
      ...(channel.password ? { password: channel.password.reveal() } : {}),
      ...(ca ? { ca } : {}),
    };
    this.#client = connect(channel.url, options);
    // The broker's host only: a URL may carry credentials.
    const broker = new URL(channel.url).host;
    this.#client.on("connect", () => {
      if (this.#lastError !== undefined) this.#logger.info({ broker }, "mqtt: connected again");
      this.#lastError = undefined;
    });
    // Said once per kind of failure, not on every reconnect attempt.
    this.#client.on("error", (error) => {
      if (error.message === this.#lastError) return;
      this.#lastError = error.message;
      this.#logger.warn({ broker, err: error.message }, "mqtt: cannot publish (retrying)");
    });
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  topic(...parts: string[]): string {
    return [this.channel.topicPrefix, ...parts].filter((p) => p !== "").join("/");
  }

  publish(topic: string, message: unknown, options: { retain?: boolean } = {}): void {
    this.#client.publish(
      topic,
      JSON.stringify(message),
      { qos: this.channel.qos, retain: options.retain ?? false },
      (error) => {
        if (error) this.#logger.warn({ topic, err: error.message }, "mqtt: a message was not delivered");
      },
    );
  }

  /** Lets queued messages go (at most CLOSE_MS), then disconnects. */
  async close(): Promise<void> {
    const client = this.#client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.end(true);
        resolve();
      }, CLOSE_MS);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
