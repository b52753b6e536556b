/**
 * One websocket subscription to a Moonraker printer's objects, the push side of the driver's
 * `events()`: identify, `server.info`, `printer.objects.subscribe` for a full status, then
 * `notify_status_update` merged into it as it comes. Klippy restarting (`notify_klippy_ready`)
 * loses the subscription, so it is made again; `notify_klippy_shutdown` and
 * `notify_klippy_disconnected` change Klippy's state. Ends when the socket closes.
 */
import { isFerryError } from "../../core/errors.ts";
import {
  mergeStatus,
  objectsQuerySchema,
  parseWire,
  serverInfoSchema,
  statusSchema,
  type WireStatus,
} from "./api-types.ts";
import type { MoonrakerClient } from "./client.ts";
import type { KlippyInfo, MoonrakerDriver } from "./driver.ts";
import { MoonrakerSocket } from "./socket.ts";

/** How Ferry introduces itself (server.connection.identify). */
const IDENTITY = {
  client_name: "Ferry",
  version: "0.1.0",
  type: "other",
  // Moonraker requires the field (a client's homepage); Ferry names none.
  url: "",
};

export interface FeedState {
  klippy: KlippyInfo;
  status: WireStatus;
}

export class StatusFeed {
  readonly #socket: MoonrakerSocket;
  readonly #driver: MoonrakerDriver;
  readonly #signal: AbortSignal | undefined;
  #klippy: KlippyInfo = { connected: false, state: "disconnected" };
  #status: WireStatus = {};
  #dirty = false;
  #ended = false;
  #wake: (() => void) | undefined;
  /** Bumped by each (re)subscription, so an older one's answer is not merged over a newer one. */
  #generation = 0;

  private constructor(socket: MoonrakerSocket, driver: MoonrakerDriver, signal: AbortSignal | undefined) {
    this.#socket = socket;
    this.#driver = driver;
    this.#signal = signal;
    socket.onNotification((method, params) => {
      this.#notified(method, params);
    });
    void socket.closed.then(() => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** Connects, identifies and subscribes; the first status is ready when this resolves. */
  static async open(
    driver: MoonrakerDriver,
    client: MoonrakerClient,
    options: { signal?: AbortSignal },
  ): Promise<StatusFeed> {
    const socket = await MoonrakerSocket.open(client.websocketUrl, {
      printer: client.printer,
      apiKey: client.apiKey,
      signal: options.signal,
    });
    const feed = new StatusFeed(socket, driver, options.signal);
    try {
      const key = client.apiKey;
      await socket
        .call(
          "server.connection.identify",
          key ? { ...IDENTITY, api_key: key.reveal() } : IDENTITY,
          options.signal,
        )
        .catch((error: unknown) => {
          // A Moonraker older than identify (v0.8): the key in the upgrade request is enough.
          if (!isFerryError(error, "NOT_FOUND")) throw error;
        });
      await feed.#subscribe();
    } catch (error) {
      socket.close();
      throw error;
    }
    return feed;
  }

  /** Klippy's state from server.info; when ready, a subscription to the driver's objects. */
  async #subscribe(): Promise<void> {
    const generation = ++this.#generation;
    const info = parseWire(
      serverInfoSchema,
      await this.#socket.call("server.info", undefined, this.#signal),
      `${this.#socket.printer}: server.info`,
    );
    const klippy = {
      connected: info.klippy_connected,
      state: info.klippy_connected ? info.klippy_state : "disconnected",
    };
    let status: WireStatus = {};
    if (klippy.connected) {
      try {
        const objects = await this.#driver.objectsToRead(
          () => this.#socket.call("printer.objects.list", undefined, this.#signal),
          klippy.state,
          this.#signal ? { signal: this.#signal } : {},
        );
        const answer = parseWire(
          objectsQuerySchema,
          await this.#socket.call("printer.objects.subscribe", { objects }, this.#signal),
          `${this.#socket.printer}: printer.objects.subscribe`,
        );
        status = answer.status;
      } catch (error) {
        // Klippy starting or failed may refuse a subscription; notify_klippy_ready will come.
        if (klippy.state === "ready" || !isFerryError(error) || isFerryError(error, "ABORTED")) throw error;
      }
    }
    if (generation !== this.#generation) return;
    this.#klippy = klippy;
    this.#status = status;
    this.#changed();
  }

  #notified(method: string, params: unknown[]): void {
    switch (method) {
      case "notify_status_update": {
        const update = statusSchema.safeParse(params[0]);
        if (!update.success) return;
        mergeStatus(this.#status, update.data);
        this.#changed();
        return;
      }
      case "notify_klippy_ready":
        // Klippy (re)started: its objects may differ, and subscriptions are gone.
        void this.#subscribe().catch(() => {
          this.close();
        });
        return;
      case "notify_klippy_shutdown":
        this.#klippy = { connected: true, state: "shutdown" };
        if (this.#status.webhooks) this.#status.webhooks = { ...this.#status.webhooks, state: "shutdown" };
        this.#changed();
        return;
      case "notify_klippy_disconnected":
        this.#generation++;
        this.#klippy = { connected: false, state: "disconnected" };
        this.#status = {};
        this.#changed();
        return;
      default:
        return;
    }
  }

  #changed(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  /** The state now, then again after each change (several changes at once are one); ends when the socket closes. */
  async *updates(): AsyncGenerator<FeedState> {
    for (;;) {
      if (!this.#dirty && !this.#ended) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
      }
      if (this.#ended) return;
      if (!this.#dirty) continue;
      this.#dirty = false;
      yield { klippy: this.#klippy, status: structuredClone(this.#status) };
    }
  }

  close(): void {
    this.#socket.close();
  }
}
