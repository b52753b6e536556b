/**
 * Tasks: the durable queue seen from outside — list and filter, one task with its history, retry a
 * dead one, cancel a queued one; and the transfers running on this node with rate and time left.
 */
import { z } from "zod";
import type { App } from "../../app.ts";
import { FerryError } from "../../core/errors.ts";
import { deviceQueues } from "../../devices/queues.ts";
import type { Task } from "../../tasks/queue.ts";
import { syncScope } from "../../sync/engine/payloads.ts";
import { NAME_PATTERN } from "../../config/schema.ts";
import { isoTime, type FerryRoutes } from "../route.ts";

const TASK_STATES = ["queued", "running", "done", "dead"] as const;
/** Task ids are hex (tasks/task-rows.ts taskId). */
const taskId = z.string().regex(/^[0-9a-f]{1,64}$/, "a task id (hex digits)");

const taskSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    what: z.string().describe('what it does, e.g. "upload a/b.gcode"'),
    sync: z.string().nullable(),
    target: z.string().nullable(),
    path: z.string().nullable(),
    size: z.number().nullable(),
    state: z.enum(TASK_STATES),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    runAt: z.string().describe("not started before"),
    progress: z.number().nullable().describe("bytes done when it last reported"),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Task" });

const eventSchema = z.object({
  id: z.number().int().describe("the event stream's id"),
  at: z.string(),
  type: z.string(),
  payload: z.unknown(),
});

const transferSchema = z
  .object({
    id: z.string(),
    what: z.string(),
    sync: z.string().nullable(),
    target: z.string().nullable(),
    path: z.string().nullable(),
    size: z.number().nullable(),
    bytes: z.number(),
    bytesPerSecond: z.number().nullable().describe("smoothed over the last seconds"),
    secondsLeft: z.number().nullable(),
    startedAt: z.string(),
  })
  .meta({ id: "Transfer" });

function taskView(app: App, task: Task): z.output<typeof taskSchema> {
  const label = app.runner.describe(task);
  return {
    id: task.id,
    kind: task.kind,
    what: label.what,
    sync: label.sync ?? null,
    target: label.target ?? null,
    path: label.path ?? null,
    size: label.size ?? null,
    state: task.status,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    runAt: isoTime(task.runAt),
    progress: task.progress,
    lastError: task.lastError,
    createdAt: isoTime(task.createdAt),
    updatedAt: isoTime(task.updatedAt),
  };
}

async function getTask(app: App, id: string): Promise<Task> {
  const task = await app.stored.queue.get(id);
  if (!task) throw new FerryError("NOT_FOUND", `there is no task ${id}`, { subject: id });
  return task;
}

const tasks: FerryRoutes = (server, { app }) => {
  const queue = app.stored.queue;
  const params = z.strictObject({ id: taskId });

  server.get(
    "/api/v1/tasks",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Tasks, best first (the order workers take them), filtered",
        tags: ["tasks"],
        querystring: z.strictObject({
          state: z.enum(TASK_STATES).optional(),
          sync: z.string().regex(NAME_PATTERN, "a sync name").optional(),
          device: z.string().regex(NAME_PATTERN, "a device name").optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: { 200: z.array(taskSchema) },
      },
    },
    async (request) => {
      const { state, sync, device, limit } = request.query;
      const found = await queue.list({
        ...(state ? { status: state } : {}),
        ...(sync ? { scope: syncScope(sync) } : {}),
        ...(device ? { queues: deviceQueues(device) } : {}),
        limit,
      });
      return found.map((task) => taskView(app, task));
    },
  );

  server.get(
    "/api/v1/tasks/:id",
    {
      config: { role: "viewer" },
      schema: {
        summary: "One task, with its history (started, progress kept out, failed, done)",
        tags: ["tasks"],
        params,
        response: { 200: taskSchema.extend({ history: z.array(eventSchema) }) },
      },
    },
    async (request) => {
      const task = await getTask(app, request.params.id);
      const events = await app.events.since(0, { task: task.id }, 1000);
      return {
        ...taskView(app, task),
        history: events.map((event) => {
          const envelope = JSON.parse(event.data) as { payload: unknown };
          return { id: event.id ?? 0, at: isoTime(event.at), type: event.type, payload: envelope.payload };
        }),
      };
    },
  );

  server.post(
    "/api/v1/tasks/:id/retry",
    {
      config: { role: "operator" },
      schema: {
        summary: "Try a dead task again, with its attempts reset",
        tags: ["tasks"],
        params,
        response: { 200: taskSchema },
      },
    },
    async (request) => {
      const task = await getTask(app, request.params.id);
      if (task.status !== "dead")
        throw new FerryError("CONFLICT", `task ${task.id} is ${task.status}; only a dead task is retried`, {
          subject: task.id,
        });
      if ((await queue.retry([task.id])) === 0)
        throw new FerryError(
          "CONFLICT",
          `task ${task.id} was not retried: a newer task for the same change is queued`,
          { subject: task.id },
        );
      app.runner.notify();
      return taskView(app, await getTask(app, task.id));
    },
  );

  server.delete(
    "/api/v1/tasks/:id",
    {
      config: { role: "operator" },
      schema: {
        summary: "Cancel a queued task (a running one: pause its sync or its device)",
        tags: ["tasks"],
        params,
      },
    },
    async (request, reply) => {
      const task = await getTask(app, request.params.id);
      const [cancelled] = await queue.cancel([task.id]);
      if (cancelled === undefined) {
        const now = (await queue.get(task.id))?.status ?? "gone";
        throw new FerryError("CONFLICT", `task ${task.id} is ${now}; only a queued task is cancelled`, {
          subject: task.id,
        });
      }
      return reply.code(204).send();
    },
  );

  server.get(
    "/api/v1/transfers",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Tasks running on this node now, with bytes, rate and time left",
        tags: ["tasks"],
        response: { 200: z.array(transferSchema) },
      },
    },
    () =>
      app.inFlight.list().map((t) => ({
        id: t.id,
        what: t.what,
        sync: t.sync ?? null,
        target: t.target ?? null,
        path: t.path ?? null,
        size: t.size ?? null,
        bytes: t.bytes,
        bytesPerSecond: t.rate,
        secondsLeft: t.etaS,
        startedAt: isoTime(t.startedAt),
      })),
  );
};

export default tasks;
