/**
 * GET /api/v1/events: the engine's events as Server-Sent Events (docs/events.md): filtered by type
 * and device, resumable with Last-Event-ID from the history in the store, with heartbeats. The hub
 * writes to the socket itself; the reply is handed over to it.
 */
import { z } from "zod";
import { EventHub, eventStreamRequest } from "../events/hub.ts";
import { HttpProblem } from "../problems.ts";
import type { App } from "../../app.ts";
import type { RecordedEvent } from "../../store/event-history.ts";
import { identityOf, type FerryRoutes } from "../route.ts";
import { seesAllJobs } from "./farm-schemas.ts";

/**
 * What a user (who sees only their own jobs) may see of the stream: every event but other
 * people's jobs. Jobs are theirs when the store says so at connection, or when an event creates
 * one of theirs later.
 */
async function ownJobsOnly(app: App, user: string): Promise<(event: RecordedEvent) => boolean> {
  const own = new Set((await app.farm.list({ owner: user, limit: 10_000 })).map((job) => job.id));
  return (event) => {
    if (!event.type.startsWith("job.") && event.type !== "printer.waiting_bed_clear") return true;
    const { payload } = JSON.parse(event.data) as {
      payload: { id?: string; job?: string; owner?: string | null };
    };
    if (event.type === "job.state" && payload.owner === user && payload.id !== undefined) own.add(payload.id);
    const job = event.type === "printer.waiting_bed_clear" ? payload.job : payload.id;
    return job !== undefined && own.has(job);
  };
}

const list = z.union([z.string(), z.array(z.string())]).optional();

const events: FerryRoutes = (server, { app, metrics }) => {
  const hub = new EventHub(app.events, { logger: app.logger, clock: app.clock });
  metrics.sseClients(() => hub.subscribers);
  // Before the server waits for connections to end: open streams would hold it for its grace time.
  server.addHook("preClose", (done) => {
    hub.close();
    done();
  });

  server.get(
    "/api/v1/events",
    {
      config: { role: "viewer" },
      schema: {
        summary: "The event stream (text/event-stream), resumable with Last-Event-ID",
        description:
          "Each event: `id:` (its place in the history; none for live-only progress), `event:` (its type) and `data:` (the envelope JSON). A client that resumes from an id older than the history keeps first gets a `ferry.history.gap` event.",
        tags: ["events"],
        querystring: z.strictObject({
          type: list.describe("event types, repeated or comma-separated; task.* takes every task event"),
          device: list.describe("device names, repeated or comma-separated"),
          last_event_id: z
            .string()
            .optional()
            .describe("resume after this id (the Last-Event-ID header wins)"),
        }),
      },
    },
    async (request, reply) => {
      const parsed = eventStreamRequest(request.raw);
      if (!parsed.ok) throw new HttpProblem(400, "bad-request", "Bad request", parsed.message);
      const caller = identityOf(request);
      const allow = seesAllJobs(caller) ? undefined : await ownJobsOnly(app, caller.user.name);
      reply.hijack();
      await hub.serve(request.raw, reply.raw, { ...parsed.filter, ...(allow ? { allow } : {}) });
    },
  );
};

export default events;
