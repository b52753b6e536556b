/**
 * The farm's printers: those of ferry.yaml (`farm: true`) and those admins add through the API,
 * kept in the store by the runtime device registry and driven at once, without a restart. Admins
 * add, edit and retire the latter (a ferry.yaml printer is changed in ferry.yaml); operators pause,
 * resume and cancel the print on a printer, mark its bed clear, and put it in maintenance.
 * Credentials are never shown.
 */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import type { Job } from "../../farm/jobs.ts";
import { printerDrivers } from "../../printers/all.ts";
import { identityOf, isoTime, type FerryRoutes } from "../route.ts";
import { TemperatureHistory } from "../temperature-history.ts";
import { byName, NAME, printerSchema, printerView, seesAllJobs } from "./farm-schemas.ts";

const PRINTER_TYPES = printerDrivers.map((driver) => driver.kind) as [string, ...string[]];

const farmKeys = {
  model: z.string().min(1).max(64).nullable().optional().describe("e.g. MK4; null: none"),
  tags: z.array(z.string().min(1).max(64)).max(20).optional().describe("material, nozzle, location"),
  autoClear: z.boolean().optional().describe("the printer clears its own bed (a belt printer)"),
  cameraUrl: z.string().max(2000).nullable().optional().describe("an http(s) URL; null: none"),
};

const options = z
  .record(z.string(), z.unknown())
  .describe("the type's own keys as in ferry.yaml: url, username, password, api_key, ...");

/** The API's names of the farm keys → ferry.yaml's, which the registry stores and checks. */
function yamlKeys(body: {
  model?: string | null | undefined;
  tags?: string[] | undefined;
  autoClear?: boolean | undefined;
  cameraUrl?: string | null | undefined;
}): Record<string, unknown> {
  return {
    ...(body.model === undefined ? {} : { model: body.model }),
    ...(body.tags === undefined ? {} : { tags: body.tags }),
    ...(body.autoClear === undefined ? {} : { auto_clear: body.autoClear }),
    ...(body.cameraUrl === undefined ? {} : { camera_url: body.cameraUrl }),
  };
}

/** Drops the keys set to null (cleared). */
const withoutNulls = (entry: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(entry).filter(([, value]) => value !== null));

const printers: FerryRoutes = (server, { app }) => {
  const { farm, devices } = app;
  const configs = app.stored.deviceConfigs;
  const source = (name: string) =>
    devices.config.devices.has(name) ? ("config" as const) : ("api" as const);
  const temperatures = new TemperatureHistory(app.bus);
  const offRemoved = app.bus.on("device.removed", ({ payload }) => temperatures.forget(payload.device));
  server.addHook("onClose", (_instance, done) => {
    offRemoved();
    temperatures.close();
    done();
  });
  const show = async (request: FastifyRequest, name: string) => {
    const caller = identityOf(request);
    const visible = (job: Job) => seesAllJobs(caller) || job.owner === caller.user.name;
    return printerView(await farm.printer(name), source(name), visible);
  };

  server.get(
    "/api/v1/printers",
    {
      config: { role: "viewer" },
      schema: {
        summary: "The farm's printers with their state, bed, maintenance and job",
        description: "A user account sees the job on a printer only when it is its own.",
        tags: ["printers"],
        response: { 200: z.array(printerSchema) },
      },
    },
    async (request) => {
      const caller = identityOf(request);
      const visible = (job: Job) => seesAllJobs(caller) || job.owner === caller.user.name;
      return (await farm.printers()).map((view) => printerView(view, source(view.name), visible));
    },
  );

  server.get(
    "/api/v1/printers/:name",
    {
      config: { role: "viewer" },
      schema: {
        summary: "One printer",
        tags: ["printers"],
        params: byName,
        response: { 200: printerSchema },
      },
    },
    async (request) => show(request, request.params.name),
  );

  const heater = z.object({ name: z.string(), actual: z.number(), target: z.number().optional() });
  server.get(
    "/api/v1/printers/:name/temperatures",
    {
      config: { role: "viewer" },
      schema: {
        summary: "The printer's temperatures over the last hour (actual and target per heater)",
        description:
          "Samples at least 10 s apart, oldest first, the last one the newest reading, kept in memory since the " +
          "server started; live changes come as `printer.temperatures` events on GET /api/v1/events.",
        tags: ["printers"],
        params: byName,
        response: {
          200: z.object({
            keepS: z.number().int(),
            samples: z.array(z.object({ at: z.string(), temperatures: z.array(heater) })),
          }),
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      await farm.printer(name); // NOT_FOUND naming it
      return {
        keepS: Math.round(temperatures.keepMs / 1000),
        samples: temperatures
          .of(name, app.clock.now())
          .map((sample) => ({ at: isoTime(sample.at), temperatures: sample.temperatures })),
      };
    },
  );

  server.get(
    "/api/v1/printers/:name/files",
    {
      config: { role: "viewer" },
      schema: {
        summary: "The files on the printer's storage, one folder at a time",
        tags: ["printers"],
        params: byName,
        querystring: z.strictObject({
          dir: z
            .string()
            .max(1000)
            .default("")
            .describe("a folder of the printer's storage; default its root"),
        }),
        response: {
          200: z.array(
            z.object({
              path: z.string(),
              type: z.enum(["file", "dir"]),
              size: z.number().nullable(),
              modifiedAt: z.string().nullable(),
            }),
          ),
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      await farm.printer(name); // NOT_FOUND naming it
      const storage = devices.storage(name);
      const entries = [];
      for await (const entry of storage.list(request.query.dir)) {
        entries.push({
          path: entry.path,
          type: entry.type,
          size: entry.size ?? null,
          modifiedAt: entry.modTime === undefined ? null : isoTime(entry.modTime),
        });
        if (entries.length >= 5000) break;
      }
      return entries.sort((a, b) => a.path.localeCompare(b.path));
    },
  );

  server.post(
    "/api/v1/printers",
    {
      config: { role: "admin" },
      schema: {
        summary: "Add a printer to the farm (kept in the store, driven at once)",
        description: "Its options are checked as ferry.yaml's would be; a problem names the field.",
        tags: ["printers"],
        body: z.strictObject({ name: NAME, type: z.enum(PRINTER_TYPES), options, ...farmKeys }),
        response: { 201: printerSchema },
      },
    },
    async (request, reply) => {
      const { name, type, options: given, ...keys } = request.body;
      if (devices.has(name))
        throw new FerryError(
          "EXISTS",
          `device "${name}" exists already${source(name) === "config" ? ` (in ${devices.config.file})` : ""}`,
          { subject: name, retryable: false },
        );
      await devices.add(configs, name, type, withoutNulls({ ...given, ...yamlKeys(keys), farm: true }));
      return reply
        .code(201)
        .header("location", `/api/v1/printers/${name}`)
        .send(await show(request, name));
    },
  );

  server.patch(
    "/api/v1/printers/:name",
    {
      config: { role: "admin" },
      schema: {
        summary: "Change a printer added through the API",
        description:
          "`options` keys replace the stored ones (null removes one); the farm keys replace theirs. " +
          "The printer's worker starts over with the new entry. A ferry.yaml printer is changed in ferry.yaml.",
        tags: ["printers"],
        params: byName,
        body: z.strictObject({
          type: z.enum(PRINTER_TYPES).optional(),
          options: options.optional(),
          ...farmKeys,
        }),
        response: { 200: printerSchema },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { type, options: given, ...keys } = request.body;
      const stored = (await configs.all()).find((record) => record.name === name);
      if (!stored) {
        if (source(name) === "config" && devices.has(name))
          throw new FerryError(
            "CONFLICT",
            `printer ${name} is defined in ${devices.config.file}; change it there`,
            {
              subject: name,
              retryable: false,
            },
          );
        throw new FerryError("NOT_FOUND", `there is no farm printer ${name}`, {
          subject: name,
          retryable: false,
        });
      }
      const entry = withoutNulls({ ...stored.options, ...given, ...yamlKeys(keys), farm: true });
      await devices.add(configs, name, type ?? stored.kind, entry);
      return show(request, name);
    },
  );

  server.delete(
    "/api/v1/printers/:name",
    {
      config: { role: "admin" },
      schema: {
        summary: "Retire a printer added through the API (not while a job holds it)",
        tags: ["printers"],
        params: byName,
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const view = await farm.printer(name);
      if (source(name) === "config")
        throw new FerryError(
          "CONFLICT",
          `printer ${name} is defined in ${devices.config.file}; remove it there`,
          {
            subject: name,
            retryable: false,
          },
        );
      if (view.job)
        throw new FerryError(
          "CONFLICT",
          `printer ${name} holds job ${view.job.id} (${view.job.state}); cancel it or let it finish first`,
          { subject: name, retryable: false },
        );
      await devices.remove(configs, name);
      return reply.code(204).send();
    },
  );

  /** The job holding a printer, or CONFLICT naming what the printer is doing. */
  const jobOn = async (name: string, action: string): Promise<Job> => {
    const view = await farm.printer(name);
    if (!view.job)
      throw new FerryError(
        "CONFLICT",
        `printer ${name} has no job to ${action} (it is ${view.activity ?? "not seen yet"})`,
        {
          subject: name,
          retryable: false,
        },
      );
    return view.job;
  };

  const action = (
    path: string,
    summary: string,
    act: (name: string, actor: string, request: FastifyRequest) => Promise<unknown>,
    body?: z.ZodType,
  ) =>
    server.post(
      `/api/v1/printers/:name/${path}`,
      {
        config: { role: "operator" },
        schema: {
          summary,
          tags: ["printers"],
          params: byName,
          ...(body ? { body } : {}),
          response: { 200: printerSchema },
        },
      },
      async (request) => {
        await act(request.params.name, identityOf(request).user.name, request);
        return show(request, request.params.name);
      },
    );

  action("pause", "Pause the print on the printer", async (name, actor) =>
    farm.pause((await jobOn(name, "pause")).id, actor),
  );
  action("resume", "Resume the paused print on the printer", async (name, actor) =>
    farm.resume((await jobOn(name, "resume")).id, actor),
  );
  const reasonBody = z.strictObject({ reason: z.string().max(500).optional() }).nullish();
  action(
    "cancel",
    "Cancel the job on the printer (its print is stopped)",
    async (name, actor, request) =>
      farm.cancel(
        (await jobOn(name, "cancel")).id,
        actor,
        (request.body as { reason?: string } | undefined)?.reason,
      ),
    reasonBody,
  );
  action(
    "bed-clear",
    "The part is off the bed: a printed job completes, the printer takes the next",
    (name, actor) => farm.markBedClear(name, actor),
  );

  server.put(
    "/api/v1/printers/:name/maintenance",
    {
      config: { role: "operator" },
      schema: {
        summary: "Put a printer in maintenance: the scheduler leaves it alone",
        tags: ["printers"],
        params: byName,
        body: z.strictObject({ reason: z.string().min(1).max(500) }),
        response: { 200: printerSchema },
      },
    },
    async (request) => {
      await farm.setMaintenance(request.params.name, request.body.reason, identityOf(request).user.name);
      return show(request, request.params.name);
    },
  );

  server.delete(
    "/api/v1/printers/:name/maintenance",
    {
      config: { role: "operator" },
      schema: {
        summary: "End a printer's maintenance",
        tags: ["printers"],
        params: byName,
        response: { 200: printerSchema },
      },
    },
    async (request) => {
      await farm.setMaintenance(request.params.name, null, identityOf(request).user.name);
      return show(request, request.params.name);
    },
  );
};

export default printers;
