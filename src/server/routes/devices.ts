/** Devices: what Ferry knows of each (state, since when, why), and a probe on demand. */
import { z } from "zod";
import { NAME_PATTERN } from "../../config/schema.ts";
import { DEVICE_STATES } from "../../store/devices.ts";
import type { App } from "../../app.ts";
import { isoTime, type FerryRoutes } from "../route.ts";

export const deviceName = z
  .string()
  .regex(NAME_PATTERN, 'a device name: letters, digits, "_", "." or "-", starting with a letter or digit');

const deviceSchema = z
  .object({
    name: z.string(),
    kind: z.string().describe("its type: prusalink, sftp, s3, ..."),
    state: z.enum(DEVICE_STATES).nullable().describe("null: not looked at yet (no sync or farm uses it)"),
    since: z.string().nullable().describe("when it entered this state"),
    detail: z
      .string()
      .nullable()
      .describe("why: the printer's state word, the error that made it offline, ..."),
  })
  .meta({ id: "Device" });

type DeviceView = z.output<typeof deviceSchema>;

async function views(app: App, names: readonly string[]): Promise<DeviceView[]> {
  const states = new Map((await app.stored.deviceStates.all()).map((s) => [s.name, s]));
  return names.map((name) => {
    const state = states.get(name);
    return {
      name,
      kind: app.devices.get(name).kind,
      state: state?.state ?? null,
      since: state ? isoTime(state.since) : null,
      detail: state?.detail ?? null,
    };
  });
}

const devices: FerryRoutes = (server, { app }) => {
  server.get(
    "/api/v1/devices",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Every device, with its state, since when and why",
        tags: ["devices"],
        response: { 200: z.array(deviceSchema) },
      },
    },
    async () => views(app, app.devices.names().sort()),
  );

  server.get(
    "/api/v1/devices/:name",
    {
      config: { role: "viewer" },
      schema: {
        summary: "One device",
        tags: ["devices"],
        params: z.strictObject({ name: deviceName }),
        response: { 200: deviceSchema },
      },
    },
    async (request) => {
      app.devices.get(request.params.name); // NOT_FOUND naming it
      const [view] = await views(app, [request.params.name]);
      return view;
    },
  );

  server.post(
    "/api/v1/devices/:name/probe",
    {
      config: { role: "operator" },
      schema: {
        summary: "Look at a device now (its queued work resumes at once if it is back)",
        tags: ["devices"],
        params: z.strictObject({ name: deviceName }),
        response: { 200: deviceSchema },
      },
    },
    async (request) => {
      const { name } = request.params;
      app.devices.get(name);
      await app.devices.checker.probe(name);
      app.runner.notify();
      const [view] = await views(app, [name]);
      return view;
    },
  );
};

export default devices;
