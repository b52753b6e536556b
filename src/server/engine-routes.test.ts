/**
 * What a script with a token does with the engine's routes: watch a transfer from queued to done
 * over the event stream, drop the stream and resume it without missing or repeating an event,
 * retry a dead task, cancel a queued one, pause and resume a sync. A real server, local folders.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fetch } from "undici";
import { enqueueFileTask } from "../sync/engine/enqueue.ts";
import { FILE_TASK } from "../sync/engine/payloads.ts";
import { waitFor } from "../../test/support/wait.ts";
import { startServer, type TestServer } from "./test-support.ts";

interface StreamEvent {
  id: number | undefined;
  type: string;
  data: { type: string; payload: Record<string, unknown> };
}

/** An SSE client: frames as they come, until closed. */
function openStream(url: string, token: string, lastEventId?: number) {
  const controller = new AbortController();
  const events: StreamEvent[] = [];
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (lastEventId !== undefined) headers["last-event-id"] = String(lastEventId);
  const done = (async () => {
    const response = await fetch(url, { headers, signal: controller.signal });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.ok(response.body);
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of frame.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
          }
          if (!fields.has("data")) continue;
          const id = fields.get("id");
          events.push({
            id: id === undefined ? undefined : Number(id),
            type: fields.get("event") ?? "message",
            data: JSON.parse(fields.get("data") ?? "null") as StreamEvent["data"],
          });
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  return {
    events,
    async close() {
      controller.abort();
      await done;
    },
  };
}

describe("the engine's routes, as a script uses them", () => {
  let t: TestServer;
  let dir: string;
  let viewer: string;
  let operator: string;

  before(async () => {
    t = await startServer({
      yaml: "syncs:\n  s: { source: ./src, targets: [./dst], mode: mirror }\n",
    });
    dir = dirname(t.app.config.file);
    await mkdir(join(dir, "src"), { recursive: true });
    viewer = await t.tokenFor("viewer");
    operator = await t.tokenFor("operator");
  });
  after(() => t.close());

  const file = (e: StreamEvent) => (e.data.payload.path as string | undefined) ?? "";
  const doneOf = (events: StreamEvent[], path: string) =>
    events.some((e) => e.type === "task.done" && file(e) === path);

  test("a transfer from queued to done over the stream; a dropped stream resumes with nothing missed", async () => {
    const stream = openStream(`${t.url}/api/v1/events?type=task.*,sync.planned`, viewer);
    await writeFile(join(dir, "src", "a.gcode"), "first");
    const run = await t.json("/api/v1/syncs/s/run", { method: "POST", token: operator });
    assert.equal(run.status, 202);
    await waitFor("a.gcode delivered, seen on the stream", () => doneOf(stream.events, "a.gcode"));
    const seen = stream.events.filter((e) => e.id !== undefined);
    assert.deepEqual(
      seen.filter((e) => file(e) === "a.gcode" || e.type === "sync.planned").map((e) => e.type),
      ["sync.planned", "task.started", "task.done"],
    );
    assert.deepEqual(
      seen.map((e) => e.id),
      [...seen.map((e) => e.id)].sort((a = 0, b = 0) => a - b),
      "ids increase",
    );
    await stream.close();
    const last = seen.at(-1)?.id;

    // While nobody listens, another file goes through.
    await writeFile(join(dir, "src", "b.gcode"), "second");
    assert.equal((await t.json("/api/v1/syncs/s/run", { method: "POST", token: operator })).status, 202);
    await waitFor("b.gcode delivered", async () => {
      const { body } = await t.json<{ path: string }[]>("/api/v1/tasks?state=done&sync=s", { token: viewer });
      return body.some((task) => task.path === "b.gcode");
    });
    const resumed = openStream(`${t.url}/api/v1/events?type=task.*,sync.planned`, viewer, last);
    await waitFor("b.gcode's events replayed", () => doneOf(resumed.events, "b.gcode"));
    await resumed.close();
    const replayed = resumed.events.filter((e) => e.id !== undefined);
    assert.ok(
      replayed.every((e) => (e.id ?? 0) > (last ?? 0)),
      "nothing before the resumption point again",
    );
    assert.deepEqual(
      replayed.filter((e) => file(e) === "b.gcode" || e.type === "sync.planned").map((e) => e.type),
      ["sync.planned", "task.started", "task.done"],
    );
    assert.equal(await readFile(join(dir, "dst", "b.gcode"), "utf8"), "second");

    const { body: task } = await t.json<{ id: string; history: { type: string }[] }>(
      `/api/v1/tasks/${(await t.app.stored.queue.list({ scope: "sync:s", status: "done" })).at(-1)?.id ?? ""}`,
      { token: viewer },
    );
    assert.deepEqual(
      task.history.map((h) => h.type),
      ["task.started", "task.done"],
    );
  });

  test("a dead task is retried; a queued one is cancelled; a paused sync refuses a run", async () => {
    const paused = await t.json<{ paused: { by: string } | null }>("/api/v1/syncs/s/pause", {
      method: "POST",
      token: operator,
    });
    assert.equal(paused.body.paused?.by, "operator");
    const refused = await t.json("/api/v1/syncs/s/run", { method: "POST", token: operator });
    assert.equal(refused.status, 409);
    assert.match(refused.body.detail, /sync s is paused/);

    // Two tasks wait in the paused sync; one is made dead the way a refusing target would.
    await writeFile(join(dir, "src", "c.gcode"), "third");
    await writeFile(join(dir, "src", "d.gcode"), "fourth");
    const ctx = t.app.engine.context;
    const target = ctx.sync("s").targets[0];
    assert.ok(target);
    for (const [path, size] of [
      ["c.gcode", 5],
      ["d.gcode", 6],
    ] as const)
      await enqueueFileTask(ctx, target, {
        op: "upload",
        sync: "s",
        target: target.label,
        path,
        targetPath: path,
        size,
      });
    const claimed = await t.app.stored.queue.claim("a-test-worker", { leaseMs: 60_000, kinds: [FILE_TASK] });
    assert.ok(claimed);
    await t.app.stored.queue.fail(claimed.id, "a-test-worker", {
      message: "the target refused it",
      retryable: false,
    });
    const { body: dead } = await t.json<{ id: string; path: string; lastError: string }[]>(
      "/api/v1/tasks?state=dead&sync=s",
      { token: viewer },
    );
    assert.deepEqual(
      dead.map((d) => [d.id, d.lastError]),
      [[claimed.id, "the target refused it"]],
    );
    const other = (await t.app.stored.queue.list({ status: "queued", scope: "sync:s" }))[0];
    assert.ok(other);

    const cancelled = await t.fetch(`/api/v1/tasks/${other.id}`, { method: "DELETE", token: operator });
    assert.equal(cancelled.status, 204);
    assert.equal((await t.json(`/api/v1/tasks/${other.id}`, { token: viewer })).status, 404);
    const notQueued = await t.json(`/api/v1/tasks/${claimed.id}`, { method: "DELETE", token: operator });
    assert.equal(notQueued.status, 409);
    assert.match(notQueued.body.detail, /is dead; only a queued task is cancelled/);

    const retried = await t.json<{ state: string; attempts: number }>(`/api/v1/tasks/${claimed.id}/retry`, {
      method: "POST",
      token: operator,
    });
    assert.deepEqual([retried.status, retried.body.state, retried.body.attempts], [200, "queued", 0]);
    const again = await t.json(`/api/v1/tasks/${claimed.id}/retry`, { method: "POST", token: operator });
    assert.equal(again.status, 409);
    assert.match(again.body.detail, /is queued; only a dead task is retried/);

    const resumed = await t.json<{ paused: unknown }>("/api/v1/syncs/s/resume", {
      method: "POST",
      token: operator,
    });
    assert.equal(resumed.body.paused, null);
    // The retried task runs, and the pass that follows the resume queues d.gcode again.
    await waitFor("c.gcode and d.gcode delivered after the resume", async () => {
      const got = await Promise.all(
        ["c.gcode", "d.gcode"].map((name) => readFile(join(dir, "dst", name), "utf8").catch(() => "")),
      );
      return (
        got.join(",") === "third,fourth" &&
        (await t.app.stored.queue.counts({ scope: "sync:s" })).running === 0
      );
    });
    assert.equal((await t.app.stored.queue.get(claimed.id))?.status, "done", "the retried task did it");
    const { body: sync } = await t.json<{ tasks: { dead: number }; lastPass: { reason: string } }>(
      "/api/v1/syncs/s",
      { token: viewer },
    );
    assert.equal(sync.tasks.dead, 0);
  });

  test("devices and syncs: lists, unknown names, bad filters", async () => {
    assert.deepEqual((await t.json("/api/v1/devices", { token: viewer })).body, []);
    const missing = await t.json("/api/v1/devices/mk4-z", { token: viewer });
    assert.equal(missing.status, 404);
    const { body: syncs } = await t.json<{ name: string; next: { kind: string } }[]>("/api/v1/syncs", {
      token: viewer,
    });
    assert.deepEqual(
      syncs.map((s) => [s.name, s.next.kind]),
      [["s", "manual"]],
    );
    assert.equal((await t.json("/api/v1/syncs/nope", { token: viewer })).status, 404);
    const badState = await t.json("/api/v1/tasks?state=lost", { token: viewer });
    assert.equal(badState.status, 400);
    const badType = await t.json("/api/v1/events?type=Not%20A%20Type", { token: viewer });
    assert.equal(badType.status, 400);
    assert.match(badType.body.detail, /is not an event type/);
    // Nothing runs once the last task's end has been told.
    await waitFor("no transfer in flight", async () => {
      const { status, body } = await t.json<unknown[]>("/api/v1/transfers", { token: viewer });
      assert.equal(status, 200);
      return body.length === 0;
    });
  });

  test("a user's stream holds their own jobs only; an operator's holds everyone's", async () => {
    const ada = await t.tokenFor("user", "ada");
    const job = (id: string, owner: string) => ({
      id,
      orderId: `order-${id}`,
      file: `${id}.gcode`,
      owner,
      origin: "user" as const,
      printer: null,
      from: null,
      to: "queued" as const,
      actor: owner,
      reason: null,
    });
    t.app.bus.emit("job.state", job("job-ada-1", "ada"));
    t.app.bus.emit("job.state", job("job-bob-1", "bob"));
    await t.app.events.flush();
    const first = (await t.app.events.since(0, { types: ["job.state"] }, 10))[0]?.id ?? 1;
    const types = "job.*,printer.waiting_bed_clear";
    const adaStream = openStream(`${t.url}/api/v1/events?type=${types}`, ada, first - 1);
    const operatorStream = openStream(`${t.url}/api/v1/events?type=${types}`, operator, first - 1);
    const jobOf = (e: StreamEvent) => (e.data.payload.id ?? e.data.payload.job) as string;
    await waitFor("both replays", () => adaStream.events.length >= 1 && operatorStream.events.length >= 2);
    // Live: ada's new job is hers from its creation on; bob's progress stays his.
    t.app.bus.emit("job.state", job("job-ada-2", "ada"));
    t.app.bus.emit("job.progress", { id: "job-bob-1", printer: "mk4-a", progress: 0.5, remainingS: 60 });
    t.app.bus.emit("job.progress", { id: "job-ada-2", printer: "mk4-b", progress: 0.25, remainingS: 90 });
    t.app.bus.emit("printer.waiting_bed_clear", {
      printer: "mk4-a",
      job: "job-bob-1",
      file: "job-bob-1.gcode",
    });
    t.app.bus.emit("printer.waiting_bed_clear", {
      printer: "mk4-b",
      job: "job-ada-1",
      file: "job-ada-1.gcode",
    });
    await waitFor("the operator's stream has all", () => operatorStream.events.length >= 7);
    await waitFor("ada's last event", () =>
      adaStream.events.some((e) => e.type === "printer.waiting_bed_clear" && jobOf(e) === "job-ada-1"),
    );
    await Promise.all([adaStream.close(), operatorStream.close()]);
    assert.deepEqual(
      adaStream.events.map((e) => `${e.type} ${jobOf(e)}`),
      [
        "job.state job-ada-1",
        "job.state job-ada-2",
        "job.progress job-ada-2",
        "printer.waiting_bed_clear job-ada-1",
      ],
    );
    assert.deepEqual(
      operatorStream.events.map((e) => jobOf(e)),
      ["job-ada-1", "job-bob-1", "job-ada-2", "job-bob-1", "job-ada-2", "job-bob-1", "job-ada-1"],
    );
  });
});
