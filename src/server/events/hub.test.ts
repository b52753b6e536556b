import assert from "node:assert/strict";
import { get, createServer, type IncomingMessage, type Server } from "node:http";
import { connect } from "node:net";
import { after, describe, test } from "node:test";
import { waitFor } from "../../../test/support/wait.ts";
import { FakeClock } from "../../core/clock.ts";
import { EventBus, type Envelope } from "../../core/events.ts";
import {
  createEventHistory,
  type EventHistory,
  type EventHistoryOptions,
} from "../../store/event-history.ts";
import { openMemoryStore } from "../../store/store.ts";
import type { EngineEvents } from "../../sync/events.ts";
import { EventHub, eventStreamRequest, GAP_EVENT, type EventHubOptions } from "./hub.ts";

interface Setup {
  url: string;
  port: number;
  bus: EventBus<EngineEvents>;
  history: EventHistory;
  hub: EventHub;
  server: Server;
  /** Every envelope the bus published, in order. */
  published: Envelope<EngineEvents>[];
  close(): Promise<void>;
}

const setups: Setup[] = [];
after(async () => {
  for (const setup of setups.splice(0)) await setup.close();
});

/** A bus, a history on a memory store, a hub, and a plain HTTP server handing requests to it. */
async function setup(
  hubOptions: EventHubOptions = {},
  historyOptions: EventHistoryOptions = {},
): Promise<Setup> {
  const store = await openMemoryStore();
  const bus = new EventBus<EngineEvents>({ node: "farm-pc:/srv/ferry" });
  const published: Envelope<EngineEvents>[] = [];
  bus.onAny((envelope) => published.push(envelope));
  const history = await createEventHistory(store, bus, historyOptions);
  const hub = new EventHub(history, hubOptions);
  // What the server's route does: check the request, then hand the raw request over.
  const server = createServer((req, res) => {
    const parsed = eventStreamRequest(req);
    if (!parsed.ok) {
      res
        .writeHead(400, { "content-type": "application/json" })
        .end(JSON.stringify({ error: parsed.message }));
      return;
    }
    void hub.serve(req, res, parsed.filter);
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 2048 }, resolve));
  const { port } = server.address() as { port: number };
  const result: Setup = {
    url: `http://127.0.0.1:${port}/api/v1/events`,
    port,
    bus,
    history,
    hub,
    server,
    published,
    close: async () => {
      hub.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await history.close();
      await store.close();
    },
  };
  setups.push(result);
  return result;
}

interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** A test client that parses the stream as the EventSource specification does (fields, blank line). */
class SseClient {
  readonly events: SseEvent[] = [];
  /** Blocks of comments only: heartbeats. */
  heartbeats = 0;
  closed = false;
  readonly #response: IncomingMessage;
  #text = "";

  constructor(response: IncomingMessage, onEvent?: (client: SseClient, event: SseEvent) => void) {
    this.#response = response;
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      this.#text += chunk;
      let end: number;
      while ((end = this.#text.indexOf("\n\n")) >= 0) {
        const block = this.#text.slice(0, end);
        this.#text = this.#text.slice(end + 2);
        const event = this.#parse(block);
        if (event && !this.closed) {
          this.events.push(event);
          onEvent?.(this, event);
        }
      }
    });
    response.on("close", () => (this.closed = true));
  }

  /** Events of the stream's types only (not the gap notice). */
  get notes(): string[] {
    return this.events
      .filter((e) => e.event === "sync.note")
      .map((e) => (JSON.parse(e.data) as { payload: { note: string } }).payload.note);
  }

  get lastId(): string | undefined {
    return this.events.findLast((e) => e.id !== undefined)?.id;
  }

  close(): void {
    this.closed = true;
    this.#response.destroy();
  }

  #parse(block: string): SseEvent | undefined {
    const lines = block.split("\n");
    if (lines.every((line) => line.startsWith(":"))) {
      this.heartbeats++;
      return undefined;
    }
    const event: SseEvent = { id: undefined, event: "message", data: "" };
    let data: string[] | undefined;
    for (const line of lines) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") event.id = value;
      else if (field === "event") event.event = value;
      else if (field === "data") (data ??= []).push(value);
    }
    if (data === undefined) return undefined;
    event.data = data.join("\n");
    return event;
  }
}

/** Opens a stream; resolves once its headers came (the hub has the client then). */
function open(
  url: string,
  headers: Record<string, string> = {},
  onEvent?: (client: SseClient, event: SseEvent) => void,
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const request = get(
      url,
      { agent: false, headers: { accept: "text/event-stream", ...headers } },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`the stream answered ${response.statusCode}`));
          response.resume();
          return;
        }
        assert.match(String(response.headers["content-type"]), /^text\/event-stream/);
        resolve(new SseClient(response, onEvent));
      },
    );
    request.on("error", reject);
  });
}

/** Status and body of a request the hub refuses. */
function refused(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

const ref = { id: "t1", kind: "sync.file", what: "send a.gcode", sync: "farm", path: "a.gcode" };
const note = (bus: EventBus<EngineEvents>, text: string, target = "mk4-a") =>
  bus.emit("sync.note", { sync: "farm", target, note: text });

describe("event stream", () => {
  test("delivers every event in order: store id, type and the envelope; task.progress without an id", async () => {
    const { url, bus, history, published } = await setup();
    const client = await open(url);
    bus.emit("device.state", { device: "mk4-a", state: "online", detail: "PrusaLink 2.1.2", since: 1 });
    bus.emit("task.started", { ...ref, target: "mk4-a" });
    bus.emit("task.progress", { ...ref, target: "mk4-a", bytes: 512 });
    bus.emit("task.done", { ...ref, target: "mk4-a", bytes: 1024, ms: 30 });
    await waitFor("four events", () => client.events.length >= 4, {
      detail: () => JSON.stringify(client.events),
    });
    const stored = await history.since(0, {}, 100);
    assert.deepEqual(
      client.events.map((e) => [e.id, e.event, e.data]),
      [
        [String(stored[0]?.id), "device.state", JSON.stringify(published[0])],
        [String(stored[1]?.id), "task.started", JSON.stringify(published[1])],
        [undefined, "task.progress", JSON.stringify(published[2])],
        [String(stored[2]?.id), "task.done", JSON.stringify(published[3])],
      ],
    );
    client.close();
  });

  test("filters by type (names and prefix.*) and by device", async () => {
    const { url, bus, hub } = await setup();
    const tasksOfA = await open(`${url}?type=task.*&device=mk4-a`);
    const states = await open(`${url}?type=device.state,sync.note&type=engine.started`);
    const ofB = await open(`${url}?device=mk4-b,mk4-c`);
    assert.equal(hub.subscribers, 3);
    bus.emit("device.state", { device: "mk4-a", state: "offline", detail: "refused", since: 1 });
    bus.emit("task.started", { ...ref, target: "mk4-a:models" });
    bus.emit("task.progress", { ...ref, target: "mk4-a:models", bytes: 1 });
    bus.emit("task.started", { ...ref, id: "t2", target: "mk4-b" });
    note(bus, "checksums fell back", "mk4-c");
    bus.emit("engine.started", { syncs: ["farm"], devices: ["mk4-a"] });
    bus.emit("task.done", { ...ref, target: "mk4-a:models", bytes: 1, ms: 1 });
    const seen = (client: SseClient) =>
      client.events.map((e) => {
        const { type, payload } = JSON.parse(e.data) as {
          type: string;
          payload: { device?: string; target?: string };
        };
        return `${type} ${payload.device ?? payload.target ?? "-"}`;
      });
    await waitFor("the task events of mk4-a", () => tasksOfA.events.length >= 3);
    await waitFor("the state, note and engine events", () => states.events.length >= 3);
    await waitFor("the events of mk4-b and mk4-c", () => ofB.events.length >= 2);
    assert.deepEqual(seen(tasksOfA), [
      "task.started mk4-a:models",
      "task.progress mk4-a:models",
      "task.done mk4-a:models",
    ]);
    assert.deepEqual(seen(states), ["device.state mk4-a", "sync.note mk4-c", "engine.started -"]);
    assert.deepEqual(seen(ofB), ["task.started mk4-b", "sync.note mk4-c"]);
    for (const client of [tasksOfA, states, ofB]) client.close();
    await waitFor("every client to be gone", () => hub.subscribers === 0);
  });

  test("a bad filter or Last-Event-ID is refused with what is wrong", async () => {
    const { url, hub } = await setup();
    assert.deepEqual(await refused(`${url}?type=Task%20Done`), {
      status: 400,
      body: JSON.stringify({
        error:
          'type "Task Done" is not an event type (a name such as task.done, or task.* for every task event)',
      }),
    });
    const error = async (url: string, headers: Record<string, string> = {}) =>
      (JSON.parse((await refused(url, headers)).body) as { error: string }).error;
    assert.equal(await error(`${url}?device=../etc`), 'device "../etc" is not a device name');
    assert.equal(
      await error(url, { "last-event-id": "9f2c41d0-0000002a" }),
      'the Last-Event-ID header "9f2c41d0-0000002a" is not an event id of this stream (a whole number)',
    );
    assert.equal(
      await error(`${url}?last_event_id=-1`),
      'last_event_id "-1" is not an event id of this stream (a whole number)',
    );
    assert.equal(hub.subscribers, 0);
  });

  test("resuming with Last-Event-ID after a drop mid-burst misses nothing and repeats nothing", async () => {
    // Small replay pages: the replay takes many reads while the burst goes on.
    const { url, bus, history, hub } = await setup({ replayPage: 7 });
    const total = 400;
    const dropAt = 120;
    const first = await open(url, {}, (client) => {
      if (client.events.length === dropAt) client.close();
    });
    let emitted = 0;
    const emit = async (count: number) => {
      for (let i = 0; i < count; i++) note(bus, `n${emitted++}`);
      await history.flush();
    };
    // The burst, ten at a time, until the client drops in the middle of it.
    while (!first.closed) {
      await emit(10);
      await waitFor("the client to take them or go", () => first.closed || first.events.length === emitted);
    }
    await waitFor("the hub to let it go", () => hub.subscribers === 0);
    // More while it is away.
    await emit(50);
    const resumeAfter = first.lastId;
    assert.ok(resumeAfter !== undefined);
    // More while it replays: written between the hub's reads of the history, so the hub both
    // reads them and holds them as live events; and ten after its last read, which it only holds.
    const read = history.since.bind(history);
    let reads = 0;
    let afterLastRead = false;
    history.since = async (afterId, filter, limit) => {
      const page = await read(afterId, filter, limit);
      reads++;
      const last = page.length < limit;
      if (emitted < total - 50 || (last && !afterLastRead)) {
        afterLastRead ||= last;
        await emit(10);
      }
      return page;
    };
    const second = await open(url, { "last-event-id": resumeAfter });
    await waitFor("the burst to go on during the replay", () => emitted >= total - 50);
    await waitFor("the replay's last read", () => afterLastRead);
    assert.ok(reads > 10, `the replay read ${reads} pages`);
    while (emitted < total) await emit(10);
    await waitFor(`all ${total} events`, () => first.notes.length + second.notes.length >= total, {
      detail: () => `${first.notes.length} + ${second.notes.length}`,
    });
    const expected = Array.from({ length: total }, (_, i) => `n${i}`);
    assert.deepEqual([...first.notes, ...second.notes], expected);
    const ids = [...first.events, ...second.events].map((e) => Number(e.id));
    assert.ok(
      ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? 0)),
      "ids increase across the reconnection",
    );
    assert.ok(!second.events.some((e) => e.event === GAP_EVENT), "nothing was pruned");
    second.close();
  });

  test("a Last-Event-ID older than the history keeps gets a gap event first, then what is kept", async () => {
    const { url, bus, history } = await setup({}, { keep: 5, pruneMs: 86_400_000 });
    for (let i = 0; i < 20; i++) note(bus, `n${i}`);
    await history.flush();
    const all = await history.since(0, {}, 100);
    await history.prune();
    const lastSeen = all[2]?.id ?? 0;
    const client = await open(`${url}?last_event_id=${lastSeen}`);
    note(bus, "n20");
    await waitFor("the gap, five kept and one live", () => client.events.length >= 7);
    const [gap, ...rest] = client.events;
    assert.equal(gap?.event, GAP_EVENT);
    assert.equal(gap.id, undefined, "the notice does not move the client's position");
    assert.deepEqual(JSON.parse(gap.data), {
      lastEventId: lastSeen,
      reason: "pruned",
      prunedThrough: all[14]?.id,
      message: `events after ${lastSeen} up to ${all[14]?.id} are no longer kept; the stream goes on with the oldest kept`,
    });
    assert.deepEqual(
      rest.map((e) => JSON.parse(e.data) as { payload: { note: string } }).map((e) => e.payload.note),
      ["n15", "n16", "n17", "n18", "n19", "n20"],
    );
    client.close();

    // The newest id: nothing missed, nothing replayed, no notice.
    const current = await open(url, { "last-event-id": String(all.at(-1)?.id) });
    note(bus, "n21");
    await waitFor("the live event", () => current.events.length >= 2);
    assert.deepEqual(current.notes, ["n20", "n21"]);
    current.close();
  });

  test("a Last-Event-ID this history never gave gets a gap event, then live events", async () => {
    const { url, bus, history } = await setup();
    note(bus, "before");
    await history.flush();
    const client = await open(url, { "last-event-id": "987654" });
    await waitFor("the notice", () => client.events.length >= 1);
    note(bus, "after");
    await waitFor("the live event", () => client.events.length >= 2);
    const [gap] = client.events;
    assert.equal(gap?.event, GAP_EVENT);
    assert.equal((JSON.parse(gap.data) as { reason: string }).reason, "unknown");
    assert.deepEqual(client.notes, ["after"]);
    client.close();
  });

  test("sends a heartbeat comment every heartbeatMs, and its timer goes with the last client", async () => {
    const clock = new FakeClock();
    const { url, hub } = await setup({ clock, heartbeatMs: 15_000 });
    const client = await open(url);
    await waitFor("the heartbeat to wait", () => clock.sleeping === 1);
    clock.advance(14_999);
    clock.advance(1);
    await waitFor("a heartbeat", () => client.heartbeats === 1);
    await waitFor("the next wait", () => clock.sleeping === 1);
    clock.advance(15_000);
    await waitFor("a second heartbeat", () => client.heartbeats === 2);
    assert.equal(client.events.length, 0, "a heartbeat is no event");
    client.close();
    await waitFor("the client to be gone", () => hub.subscribers === 0);
    assert.equal(clock.sleeping, 0, "no heartbeat timer is left");
  });

  test("1,000 clients connecting and disconnecting at once leave nothing behind", async () => {
    const clock = new FakeClock();
    const { url, bus, hub, server } = await setup({ clock });
    const connections = () =>
      new Promise<number>((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
    const clients = await Promise.all(Array.from({ length: 1_000 }, () => open(url)));
    assert.equal(hub.subscribers, 1_000);
    note(bus, "to all");
    await waitFor("every client to get the event", () => clients.every((c) => c.events.length === 1));
    // Half go at once; the other half come back in the meantime and go before the server answers.
    for (const client of clients.slice(0, 500)) client.close();
    const aborted = Array.from({ length: 500 }, () => {
      const request = get(url, { agent: false });
      request.on("error", () => undefined);
      request.on("socket", (socket) => socket.on("connect", () => request.destroy()));
      return request;
    });
    for (const client of clients.slice(500)) client.close();
    note(bus, "to none");
    await waitFor(
      "every client to be gone",
      async () => hub.subscribers === 0 && (await connections()) === 0,
      {
        detail: async () => `${hub.subscribers} subscribers, ${await connections()} connections`,
      },
    );
    assert.ok(aborted.every((r) => r.destroyed));
    assert.equal(hub.buffered, 0);
    assert.equal(hub.dropped, 0);
    assert.equal(clock.sleeping, 0, "no heartbeat timer is left");
  });

  test("a client that never reads is dropped; a reading client keeps up and memory stays bounded", async () => {
    const limit = 1024 * 1024;
    const { url, port, bus, history, hub } = await setup({ maxBufferBytes: limit }, { keep: 500 });
    const reader = await open(url);
    // A client that sends its request, takes the first bytes and never reads again.
    const stuck = connect({ port, host: "127.0.0.1" });
    stuck.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await new Promise((resolve) => stuck.once("data", resolve));
    stuck.pause();
    await waitFor("both clients", () => hub.subscribers === 2);

    const big = "x".repeat(16 * 1024);
    let sent = 0;
    let peak = 0;
    // 128 KiB at a time, each taken by the reader before the next: it never falls behind.
    while (hub.dropped === 0) {
      assert.ok(sent < 6_400, `the stuck client was not dropped after ${sent} events of 16 KiB`);
      for (let i = 0; i < 8; i++) note(bus, `${sent++} ${big}`);
      await history.flush();
      peak = Math.max(peak, hub.buffered);
      await waitFor(`the reader to take ${sent} events`, () => reader.events.length === sent);
    }
    await waitFor("the stuck client to be gone", () => hub.subscribers === 1);
    assert.equal(hub.dropped, 1);
    assert.ok(peak <= limit + 256 * 1024, `the hub held ${peak} bytes at most, the bound is ${limit}`);
    assert.deepEqual(
      reader.notes.map((n) => n.split(" ")[0]),
      Array.from({ length: sent }, (_, i) => String(i)),
    );
    assert.ok(!reader.closed);
    // The reader stays on: later events reach it.
    note(bus, "after");
    await waitFor("the next event", () => reader.notes.at(-1) === "after");
    stuck.destroy();
    reader.close();
  });
});
