/**
 * The server's event stream (`GET /api/v1/events`, docs/events.md): Server-Sent Events over a raw
 * Node request and response, so the route only hands them over. Each event goes out once the
 * history has recorded it, in the order of its id:
 *
 *   id: 4711
 *   event: task.done
 *   data: {"id":"9f2c41d0-0000002a","at":1765000000000,"node":"…","type":"task.done","payload":{…}}
 *
 * Live-only events (`task.progress`) have no `id:` line. A client that gives a Last-Event-ID first
 * gets what the history holds after it, then the live events (held meanwhile, none twice); when the
 * history no longer holds everything after it, a `ferry.history.gap` event says so first.
 *
 * Memory per client is bounded: a live client whose unsent bytes pass `maxBufferBytes` is dropped
 * (its connection destroyed); a replay waits for the client to drain between pages, and the live
 * events held while it replays count against the same bound. One heartbeat loop serves every
 * client and runs only while there are clients.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { systemClock, type Clock } from "../../core/clock.ts";
import { silentLogger, type Logger } from "../../core/logger.ts";
import { typeMatcher, type EventHistory, type RecordedEvent } from "../../store/event-history.ts";

export interface EventStreamFilter {
  /** Type names, or `prefix.*`; none: every type. */
  types?: readonly string[];
  /** Device names; none: every event. */
  devices?: readonly string[];
  /** Resume after this id (the Last-Event-ID); none: live events only. */
  lastEventId?: number;
  /** What this caller may see of what matches (e.g. a user: their own jobs only); none: all. */
  allow?: (event: RecordedEvent) => boolean;
}

export interface EventHubOptions {
  /** A comment line this often keeps proxies from closing a quiet stream (default 15 s). */
  heartbeatMs?: number;
  /** Unsent bytes a client may have before it is dropped (default 1 MiB). */
  maxBufferBytes?: number;
  /** Events read from the history at a time while replaying (default 500). */
  replayPage?: number;
  /** The reconnection delay the stream advises clients (`retry:`, default 3 s). */
  retryMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** The `event:` of the notice that events after the client's Last-Event-ID are not all available. */
export const GAP_EVENT = "ferry.history.gap";

interface Client {
  readonly res: ServerResponse;
  readonly matches: (event: RecordedEvent) => boolean;
  /** Live events that came while the history was replayed; undefined once the client is live. */
  held: RecordedEvent[] | undefined;
  heldBytes: number;
  gone: boolean;
}

export class EventHub {
  readonly #history: EventHistory;
  readonly #heartbeatMs: number;
  readonly #maxBufferBytes: number;
  readonly #replayPage: number;
  readonly #retryMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #clients = new Set<Client>();
  readonly #unsubscribe: () => void;
  #heartbeat: AbortController | undefined;
  #dropped = 0;
  #closed = false;

  constructor(history: EventHistory, options: EventHubOptions = {}) {
    this.#history = history;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBufferBytes = options.maxBufferBytes ?? 1024 * 1024;
    this.#replayPage = options.replayPage ?? 500;
    this.#retryMs = options.retryMs ?? 3_000;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#unsubscribe = history.subscribe((batch) => this.#fanOut(batch));
  }

  /** Clients connected now. */
  get subscribers(): number {
    return this.#clients.size;
  }

  /** Clients dropped for not reading, since the start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes held for all clients together: unsent output and live events held during replays. */
  get buffered(): number {
    let bytes = 0;
    for (const client of this.#clients) bytes += client.res.writableLength + client.heldBytes;
    return bytes;
  }

  /**
   * Streams events to `res` until the client goes or the hub closes; resolves then (never
   * rejects). The request must have been checked (eventStreamRequest).
   */
  serve(req: IncomingMessage, res: ServerResponse, filter: EventStreamFilter = {}): Promise<void> {
    if (this.#closed) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8" }).end("the server is stopping\n");
      return Promise.resolve();
    }
    const types = typeMatcher(filter.types);
    const devices = filter.devices && filter.devices.length > 0 ? new Set(filter.devices) : undefined;
    const client: Client = {
      res,
      matches: (event) =>
        (types === undefined || types(event.type)) &&
        (devices === undefined || (event.device !== null && devices.has(event.device))) &&
        (filter.allow === undefined || filter.allow(event)),
      held: filter.lastEventId === undefined ? undefined : [],
      heldBytes: 0,
      gone: false,
    };
    const ended = new Promise<void>((resolve) => {
      res.once("close", () => {
        this.#remove(client);
        resolve();
      });
    });
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // nginx buffers responses unless told not to.
      "x-accel-buffering": "no",
    });
    // Sent at once, so the client knows it is connected before the first event.
    res.write(`: ferry events\nretry: ${this.#retryMs}\n\n`);
    this.#clients.add(client);
    if (this.#heartbeat === undefined) this.#startHeartbeat();
    if (filter.lastEventId !== undefined) {
      const after = filter.lastEventId;
      void this.#replay(client, after, filter).catch((error: unknown) => {
        this.#logger.warn(
          { err: error instanceof Error ? error.message : String(error), after },
          "cannot replay the event history; closing the stream",
        );
        this.#remove(client);
        res.destroy();
      });
    }
    return ended;
  }

  /** Ends every stream and stops listening; clients that do not take the end are cut off. */
  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    for (const client of [...this.#clients]) {
      this.#remove(client);
      client.res.end();
      if (client.res.writableLength > 0) client.res.destroy();
    }
  }

  async #replay(client: Client, after: number, filter: EventStreamFilter): Promise<void> {
    const horizon = await this.#history.horizon();
    let cursor = after;
    if (after > horizon.newest) {
      // An id this history never gave (the database was replaced): nothing to replay.
      client.res.write(gapFrame(after, "unknown", horizon));
      this.#goLive(client, 0);
      return;
    }
    if (after < horizon.prunedThrough) client.res.write(gapFrame(after, "pruned", horizon));
    const query = {
      node: this.#history.node,
      ...(filter.types ? { types: filter.types } : {}),
      ...(filter.devices ? { devices: filter.devices } : {}),
    };
    for (;;) {
      const page = await this.#history.since(cursor, query, this.#replayPage);
      if (client.gone) return;
      for (const event of page) if (!filter.allow || filter.allow(event)) client.res.write(frame(event));
      cursor = page.at(-1)?.id ?? cursor;
      if (page.length < this.#replayPage) break;
      if (client.res.writableLength > this.#maxBufferBytes) await drained(client.res);
    }
    this.#goLive(client, cursor);
  }

  /** Sends what was held during the replay, but what the replay already sent (ids up to `sent`). */
  #goLive(client: Client, sent: number): void {
    const held = client.held ?? [];
    client.held = undefined;
    client.heldBytes = 0;
    for (const event of held) {
      if (event.id === undefined || event.id > sent) this.#deliver(client, frame(event));
    }
  }

  #fanOut(batch: readonly RecordedEvent[]): void {
    if (this.#clients.size === 0) return;
    // Each event's frame is built once, for however many clients take it.
    const frames: (string | undefined)[] = [];
    for (const client of this.#clients) {
      for (let i = 0; i < batch.length; i++) {
        const event = batch[i] as RecordedEvent;
        if (!client.matches(event)) continue;
        if (client.held !== undefined) {
          client.held.push(event);
          client.heldBytes += event.data.length;
          if (client.heldBytes > this.#maxBufferBytes) {
            this.#drop(client);
            break;
          }
          continue;
        }
        const text = (frames[i] ??= frame(event));
        if (!this.#deliver(client, text)) break;
      }
    }
  }

  /** Writes to a live client; drops it when it has fallen too far behind. False: it was dropped. */
  #deliver(client: Client, text: string): boolean {
    if (client.gone) return false;
    client.res.write(text);
    if (client.res.writableLength <= this.#maxBufferBytes) return true;
    this.#drop(client);
    return false;
  }

  #drop(client: Client): void {
    this.#dropped++;
    this.#logger.warn(
      {
        client: client.res.socket?.remoteAddress,
        unsent: client.res.writableLength + client.heldBytes,
        limit: this.#maxBufferBytes,
      },
      "dropping an event stream client that does not keep up",
    );
    this.#remove(client);
    client.res.destroy();
  }

  #remove(client: Client): void {
    if (client.gone) return;
    client.gone = true;
    client.held = undefined;
    client.heldBytes = 0;
    this.#clients.delete(client);
    if (this.#clients.size === 0) {
      this.#heartbeat?.abort();
      this.#heartbeat = undefined;
    }
  }

  #startHeartbeat(): void {
    const controller = new AbortController();
    this.#heartbeat = controller;
    const beat = async () => {
      for (;;) {
        await this.#clock.sleep(this.#heartbeatMs, controller.signal);
        for (const client of [...this.#clients]) {
          // A replaying client is busy receiving already.
          if (client.held === undefined) this.#deliver(client, ":\n\n");
        }
      }
    };
    beat().catch(() => undefined); // ends with the abort, when the last client goes
  }
}

/** `?type=…&device=…&last_event_id=…` and the Last-Event-ID header, checked. */
export type EventStreamRequest = { ok: true; filter: EventStreamFilter } | { ok: false; message: string };

const TYPE_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*(\.\*)?$/;
/** Same as ferry.yaml's device names (config/schema.ts NAME_PATTERN). */
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const EVENT_ID = /^[0-9]{1,15}$/;

/**
 * The filter of an event stream request: `type` and `device` (each repeated or comma-separated),
 * and where to resume: the Last-Event-ID header (what a browser's EventSource sends when it
 * reconnects) before `last_event_id` in the query (for a first connection that resumes).
 */
export function eventStreamRequest(req: IncomingMessage): EventStreamRequest {
  const query = new URL(req.url ?? "/", "http://localhost").searchParams;
  const list = (name: string) =>
    query
      .getAll(name)
      .flatMap((value) => value.split(","))
      .map((value) => value.trim())
      .filter((value) => value !== "");
  const filter: EventStreamFilter = {};
  const types = list("type");
  const badType = types.find((type) => !TYPE_NAME.test(type));
  if (badType !== undefined) {
    return {
      ok: false,
      message: `type "${badType}" is not an event type (a name such as task.done, or task.* for every task event)`,
    };
  }
  if (types.length > 0) filter.types = types;
  const devices = list("device");
  const badDevice = devices.find((device) => !DEVICE_NAME.test(device));
  if (badDevice !== undefined) return { ok: false, message: `device "${badDevice}" is not a device name` };
  if (devices.length > 0) filter.devices = devices;
  const header = req.headers["last-event-id"];
  const fromHeader = (Array.isArray(header) ? header[0] : header)?.trim();
  const [source, text] = fromHeader
    ? ["the Last-Event-ID header", fromHeader]
    : ["last_event_id", query.get("last_event_id")?.trim()];
  if (text) {
    if (!EVENT_ID.test(text)) {
      return { ok: false, message: `${source} "${text}" is not an event id of this stream (a whole number)` };
    }
    filter.lastEventId = Number(text);
  }
  return { ok: true, filter };
}

function frame(event: RecordedEvent): string {
  const id = event.id === undefined ? "" : `id: ${event.id}\n`;
  return `${id}event: ${event.type}\ndata: ${event.data}\n\n`;
}

function gapFrame(after: number, reason: "pruned" | "unknown", horizon: { prunedThrough: number }): string {
  const message =
    reason === "pruned"
      ? `events after ${after} up to ${horizon.prunedThrough} are no longer kept; the stream goes on with the oldest kept`
      : `${after} is not an event id of this history (was the database replaced?); the stream goes on with live events`;
  const data = JSON.stringify({ lastEventId: after, reason, prunedThrough: horizon.prunedThrough, message });
  return `event: ${GAP_EVENT}\ndata: ${data}\n\n`;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
