/**
 * A user's own notifications (docs/notifications.md): GET and PATCH /api/v1/me/notifications.
 * Switched off, the user is left out of every rule that names them (as the owner of a job, by
 * their role or by name); `email` is where their e-mail goes. Each user sees and changes only
 * their own.
 */
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import { identityOf, isoTime, type FerryRoutes } from "../route.ts";

const settingsSchema = z.object({
  enabled: z.boolean().describe("false: this user is told nothing"),
  email: z.string().nullable().describe("where this user's e-mail goes; null: none"),
  updatedAt: z.string().nullable(),
});

const notifications: FerryRoutes = (server, { app }) => {
  const settings = app.stored.notificationSettings;
  const view = async (user: string) => {
    const found = await settings.get(user);
    if (!found) throw new FerryError("NOT_FOUND", `no user "${user}"`);
    return {
      enabled: found.enabled,
      email: found.email,
      updatedAt: found.updatedAt === null ? null : isoTime(found.updatedAt),
    };
  };

  server.get(
    "/api/v1/me/notifications",
    {
      config: { role: "viewer" },
      schema: {
        summary: "My notification settings",
        tags: ["session"],
        response: { 200: settingsSchema },
      },
    },
    async (request) => view(identityOf(request).user.name),
  );

  server.patch(
    "/api/v1/me/notifications",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Switch my notifications on or off, set my e-mail address",
        tags: ["session"],
        body: z
          .strictObject({
            enabled: z.boolean().optional(),
            email: z
              .email({ error: "expected an e-mail address such as ada@example.com" })
              .max(254)
              .nullable()
              .optional(),
          })
          .refine((body) => body.enabled !== undefined || body.email !== undefined, {
            message: "give enabled, email or both",
          }),
        response: { 200: settingsSchema },
      },
    },
    async (request) => {
      const user = identityOf(request).user.name;
      const { enabled, email } = request.body;
      await settings.set(user, {
        ...(enabled === undefined ? {} : { enabled }),
        ...(email === undefined ? {} : { email }),
      });
      return view(user);
    },
  );
};

export default notifications;
