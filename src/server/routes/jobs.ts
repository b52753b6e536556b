/**
 * Print jobs and orders (docs/farm.md): submit a library file (N copies are N jobs of one order),
 * list with filters, one job and its history; approve, reject, assign, reprioritize and take over
 * (operators); cancel (the owner, or an operator). Users see only their own jobs (farm-schemas.ts).
 */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { roleAllows } from "../../auth/roles.ts";
import { FerryError, isFerryError } from "../../core/errors.ts";
import type { Job } from "../../farm/jobs.ts";
import { HttpProblem } from "../problems.ts";
import { identityOf, isoTime, type FerryRoutes } from "../route.ts";
import {
  byId,
  historySchema,
  ID,
  jobSchema,
  jobStateSchema,
  jobView,
  NAME,
  orderSchema,
  ownJobOrOperator,
  seesAllJobs,
  visibleJob,
} from "./farm-schemas.ts";

/** `a,b` or repeated `?state=a&state=b`. */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    (value: unknown): unknown[] =>
      (Array.isArray(value) ? (value as unknown[]) : [value]).flatMap((v: unknown): unknown[] =>
        typeof v === "string" ? v.split(",").filter((s) => s !== "") : [v],
      ),
    z.array(item),
  );

const reason = z.strictObject({ reason: z.string().max(500).optional() });

const jobs: FerryRoutes = (server, { app }) => {
  const farm = app.farm;
  const view = (job: Job) => jobView(job, farm.why(job.id));
  /** An order's jobs, oldest first, if the caller may see them (404 as for no such order otherwise). */
  const visibleOrder = async (request: FastifyRequest, id: string): Promise<Job[]> => {
    const found = await farm.list({ orderId: id, limit: 1000 });
    const caller = identityOf(request);
    const first = found[0];
    if (!first || (!seesAllJobs(caller) && first.owner !== caller.user.name))
      throw new FerryError("NOT_FOUND", `there is no order ${id}`, { subject: id, retryable: false });
    return found.reverse();
  };
  /** The job, if the caller may see it (404 as for no such job otherwise). */
  const visible = async (request: FastifyRequest, id: string) => visibleJob(request, await farm.get(id));

  server.post(
    "/api/v1/jobs",
    {
      config: { role: "user" },
      schema: {
        summary: "Submit a library file for printing: `quantity` jobs of one order",
        description:
          "Jobs of the roles in farm.approval wait in pending_approval for an operator; others are queued at once. " +
          "Only operators set a priority.",
        tags: ["jobs"],
        body: z.strictObject({
          fileId: ID.describe("a file of the library (POST /api/v1/files)"),
          quantity: z.number().int().min(1).max(1000).default(1),
          priority: z.number().int().optional().describe("higher runs first (operators only; default 0)"),
          model: z.string().max(64).optional().describe("the printer model the job needs"),
          tags: z
            .array(z.string().min(1).max(64))
            .max(20)
            .optional()
            .describe("tags the printer must all have"),
          notes: z.string().max(2000).optional(),
        }),
        response: { 201: orderSchema },
      },
    },
    async (request, reply) => {
      const caller = identityOf(request);
      const body = request.body;
      if (body.priority !== undefined && body.priority !== 0 && !roleAllows(caller.role, "operator"))
        throw new HttpProblem(403, "forbidden", "Forbidden", "only operators set a job's priority", {
          subject: "priority",
        });
      const file = await app.library.get(body.fileId);
      if (!file)
        throw new FerryError("NOT_FOUND", `no file ${body.fileId} in the library`, {
          subject: "fileId",
          retryable: false,
        });
      const created = await farm.submit({
        file: { id: file.id, name: file.name, sha256: file.sha256 },
        owner: caller.user.name,
        role: caller.role,
        quantity: body.quantity,
        ...(body.priority === undefined ? {} : { priority: body.priority }),
        ...(body.model === undefined ? {} : { model: body.model }),
        ...(body.tags === undefined ? {} : { tags: body.tags }),
        ...(body.notes === undefined ? {} : { notes: body.notes }),
      });
      const orderId = created[0]?.orderId ?? "";
      return reply
        .code(201)
        .header("location", `/api/v1/orders/${orderId}`)
        .send({ id: orderId, owner: caller.user.name, jobs: created.map(view) });
    },
  );

  server.get(
    "/api/v1/jobs",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Jobs, newest first (a user account sees only its own)",
        tags: ["jobs"],
        querystring: z.strictObject({
          state: list(jobStateSchema).optional().describe("states, comma-separated or repeated"),
          printer: NAME.optional(),
          owner: z.string().max(64).optional(),
          order: ID.optional(),
          origin: z.enum(["user", "printer"]).optional(),
          file: ID.optional().describe("a library file's id"),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: { 200: z.array(jobSchema) },
      },
    },
    async (request) => {
      const caller = identityOf(request);
      const q = request.query;
      const owner = seesAllJobs(caller) ? q.owner : caller.user.name;
      // A user asking for someone else's jobs sees none of them.
      if (!seesAllJobs(caller) && q.owner !== undefined && q.owner !== caller.user.name) return [];
      const found = await farm.list({
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.printer === undefined ? {} : { printer: q.printer }),
        ...(owner === undefined ? {} : { owner }),
        ...(q.order === undefined ? {} : { orderId: q.order }),
        ...(q.origin === undefined ? {} : { origin: q.origin }),
        ...(q.file === undefined ? {} : { fileId: q.file }),
        limit: q.limit,
      });
      return found.map(view);
    },
  );

  server.get(
    "/api/v1/jobs/:id",
    {
      config: { role: "viewer" },
      schema: { summary: "One job", tags: ["jobs"], params: byId, response: { 200: jobSchema } },
    },
    async (request) => view(await visible(request, request.params.id)),
  );

  server.get(
    "/api/v1/jobs/:id/history",
    {
      config: { role: "viewer" },
      schema: {
        summary: "A job's state changes, oldest first: who, when, why",
        tags: ["jobs"],
        params: byId,
        response: { 200: z.array(historySchema) },
      },
    },
    async (request) => {
      await visible(request, request.params.id);
      return (await farm.history(request.params.id)).map((h) => ({
        seq: h.seq,
        from: h.from,
        to: h.to,
        actor: h.actor,
        at: isoTime(h.at),
        reason: h.reason,
      }));
    },
  );

  server.post(
    "/api/v1/jobs/:id/cancel",
    {
      config: { role: "user" },
      schema: {
        summary: "Cancel a job (yours; operators: any)",
        description:
          "At once when nothing of it is on a printer yet; else the job is cancelling until its printer has stopped.",
        tags: ["jobs"],
        params: byId,
        body: reason.nullish(),
        response: { 200: jobSchema },
      },
    },
    async (request) => {
      const caller = identityOf(request);
      ownJobOrOperator(request, await farm.get(request.params.id), "cancel");
      return view(await farm.cancel(request.params.id, caller.user.name, request.body?.reason));
    },
  );

  /** An operator's action on one job. */
  const operatorAction = (
    path: string,
    summary: string,
    body: z.ZodType | undefined,
    act: (id: string, actor: string, body: unknown) => Promise<Job>,
  ) =>
    server.post(
      `/api/v1/jobs/:id/${path}`,
      {
        config: { role: "operator" },
        schema: {
          summary,
          tags: ["jobs"],
          params: byId,
          ...(body ? { body } : {}),
          response: { 200: jobSchema },
        },
      },
      async (request) => view(await act(request.params.id, identityOf(request).user.name, request.body)),
    );

  operatorAction("approve", "Approve a job waiting for approval: it is queued", undefined, (id, actor) =>
    farm.approve(id, actor),
  );
  operatorAction(
    "reject",
    "Reject a job waiting for approval: it is cancelled",
    reason.nullish(),
    (id, actor, b) => farm.reject(id, actor, (b as z.output<typeof reason> | undefined)?.reason),
  );
  const priorityBody = z.strictObject({ priority: z.number().int().min(-1000).max(1000) });
  operatorAction(
    "priority",
    "Give a pending or queued job a new priority (higher runs first)",
    priorityBody,
    (id, actor, b) => farm.reprioritize(id, (b as z.output<typeof priorityBody>).priority, actor),
  );
  const assignBody = z.strictObject({ printer: NAME });
  operatorAction(
    "assign",
    "Give a queued job to a printer (the printer's bed must still be marked clear)",
    assignBody,
    (id, actor, b) => farm.assign(id, (b as z.output<typeof assignBody>).printer, actor),
  );
  operatorAction(
    "take-over",
    "Take over a print started at the printer, so Ferry may pause and cancel it",
    undefined,
    (id, actor) => farm.takeOver(id, actor),
  );

  server.get(
    "/api/v1/orders/:id",
    {
      config: { role: "viewer" },
      schema: {
        summary: "An order: the jobs of one submission",
        tags: ["jobs"],
        params: byId,
        response: { 200: orderSchema },
      },
    },
    async (request) => {
      const found = await visibleOrder(request, request.params.id);
      return { id: request.params.id, owner: found[0]?.owner ?? null, jobs: found.map(view) };
    },
  );

  server.post(
    "/api/v1/orders/:id/cancel",
    {
      config: { role: "user" },
      schema: {
        summary: "Cancel every job of an order not yet finished (yours; operators: any)",
        tags: ["jobs"],
        params: byId,
        body: reason.nullish(),
        response: { 200: orderSchema },
      },
    },
    async (request) => {
      const caller = identityOf(request);
      const found = await visibleOrder(request, request.params.id);
      const first = found[0];
      if (first) ownJobOrOperator(request, first, "cancel");
      for (const job of found)
        if (!["completed", "cancelled", "failed", "cancelling", "printed"].includes(job.state))
          await farm.cancel(job.id, caller.user.name, request.body?.reason).catch((error: unknown) => {
            // Moved on meanwhile (finished, or cancelled by someone else): nothing to cancel.
            if (!isFerryError(error, "CONFLICT")) throw error;
          });
      const after = await visibleOrder(request, request.params.id);
      return { id: request.params.id, owner: first?.owner ?? null, jobs: after.map(view) };
    },
  );
};

export default jobs;
