/** Syncs: their last pass, what waits, the next trigger; run one now, pause and resume it. */
import { z } from "zod";
import type { App } from "../../app.ts";
import { NAME_PATTERN } from "../../config/schema.ts";
import { syncScope } from "../../sync/engine/payloads.ts";
import { identityOf, isoTime, type FerryRoutes } from "../route.ts";

const syncName = z.string().regex(NAME_PATTERN, "a sync name");
const time = z.string().nullable();

const countsSchema = z.object({
  queued: z.number().int(),
  running: z.number().int(),
  done: z.number().int(),
  dead: z.number().int(),
});

const syncSchema = z
  .object({
    name: z.string(),
    mode: z.string(),
    source: z.string(),
    targets: z.array(z.string()),
    paused: z.object({ at: z.string(), by: z.string().nullable() }).nullable(),
    lastPass: z
      .object({
        at: z.string(),
        reason: z.string().describe("start, poll, schedule, rescan, manual, resumed, <device> is back"),
        changes: z.number().int().describe("changes it queued over every target"),
        bytes: z.number(),
      })
      .nullable()
      .describe("the last planning pass of this run; null: none yet"),
    lastError: z.object({ at: z.string(), reason: z.string(), error: z.string() }).nullable(),
    next: z.object({ kind: z.enum(["watch", "poll", "schedule", "manual"]), at: time }),
    tasks: countsSchema,
  })
  .meta({ id: "Sync" });

async function syncView(app: App, name: string): Promise<z.output<typeof syncSchema>> {
  const view = app.engine.view(name);
  return {
    name: view.name,
    mode: view.mode,
    source: view.source,
    targets: view.targets,
    paused: view.paused && { at: isoTime(view.paused.at), by: view.paused.by },
    lastPass: view.lastPass && { ...view.lastPass, at: isoTime(view.lastPass.at) },
    lastError: view.lastError && { ...view.lastError, at: isoTime(view.lastError.at) },
    next: { kind: view.next.kind, at: view.next.at === null ? null : isoTime(view.next.at) },
    tasks: await app.stored.queue.counts({ scope: syncScope(name) }),
  };
}

const syncs: FerryRoutes = (server, { app }) => {
  const params = z.strictObject({ name: syncName });

  server.get(
    "/api/v1/syncs",
    {
      config: { role: "viewer" },
      schema: { summary: "Every sync", tags: ["syncs"], response: { 200: z.array(syncSchema) } },
    },
    async () => Promise.all(app.engine.syncs().map((sync) => syncView(app, sync.name))),
  );

  server.get(
    "/api/v1/syncs/:name",
    {
      config: { role: "viewer" },
      schema: { summary: "One sync", tags: ["syncs"], params, response: { 200: syncSchema } },
    },
    async (request) => syncView(app, request.params.name),
  );

  server.post(
    "/api/v1/syncs/:name/run",
    {
      config: { role: "operator" },
      schema: {
        summary: "Plan the sync now, as `ferry sync` would (409 while it is paused)",
        tags: ["syncs"],
        params,
        response: { 202: syncSchema },
      },
    },
    async (request, reply) => {
      app.engine.run(request.params.name);
      return reply.code(202).send(await syncView(app, request.params.name));
    },
  );

  server.post(
    "/api/v1/syncs/:name/pause",
    {
      config: { role: "operator" },
      schema: {
        summary: "Pause a sync: it plans nothing, its queued tasks wait (kept across restarts)",
        tags: ["syncs"],
        params,
        response: { 200: syncSchema },
      },
    },
    async (request) => {
      await app.engine.pause(request.params.name, identityOf(request).user.name);
      return syncView(app, request.params.name);
    },
  );

  server.post(
    "/api/v1/syncs/:name/resume",
    {
      config: { role: "operator" },
      schema: {
        summary: "Resume a paused sync; it plans at once",
        tags: ["syncs"],
        params,
        response: { 200: syncSchema },
      },
    },
    async (request) => {
      await app.engine.resume(request.params.name);
      return syncView(app, request.params.name);
    },
  );
};

export default syncs;
