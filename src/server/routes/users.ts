/** Users, for admins: list, add, change (role, password, disabled), remove. */
import { z } from "zod";
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "../../auth/passwords.ts";
import { FerryError } from "../../core/errors.ts";
import { accountName, roleSchema, type FerryRoutes } from "../route.ts";
import { userSchema, userView } from "./schemas.ts";

const password = z.string().min(PASSWORD_MIN_LENGTH).max(PASSWORD_MAX_LENGTH);
const byName = z.strictObject({ name: accountName });

const users: FerryRoutes = (server, { app }) => {
  const accounts = app.stored.accounts;

  server.get(
    "/api/v1/users",
    {
      config: { role: "admin" },
      schema: { summary: "Every user", tags: ["users"], response: { 200: z.array(userSchema) } },
    },
    async () => (await accounts.listUsers()).map(userView),
  );

  server.post(
    "/api/v1/users",
    {
      config: { role: "admin" },
      schema: {
        summary: "Add a user",
        description: "Without a password the user signs in with API tokens only.",
        tags: ["users"],
        body: z.strictObject({ name: accountName, role: roleSchema, password: password.optional() }),
        response: { 201: userSchema },
      },
    },
    async (request, reply) => {
      const { name, role, password: given } = request.body;
      const user = await accounts.addUser({
        name,
        role,
        ...(given === undefined ? {} : { password: given }),
      });
      return reply.code(201).send(userView(user));
    },
  );

  server.get(
    "/api/v1/users/:name",
    {
      config: { role: "admin" },
      schema: { summary: "One user", tags: ["users"], params: byName, response: { 200: userSchema } },
    },
    async (request) => {
      const user = await accounts.getUser(request.params.name);
      if (!user) throw new FerryError("NOT_FOUND", `no user named "${request.params.name}"`);
      return userView(user);
    },
  );

  server.patch(
    "/api/v1/users/:name",
    {
      config: { role: "admin" },
      schema: {
        summary: "Change a user's role, password or disabled flag",
        description:
          "A new password or disabling signs the user out everywhere; a disabled user's tokens stop working. The last admin cannot be demoted or disabled.",
        tags: ["users"],
        params: byName,
        body: z.strictObject({
          role: roleSchema.optional(),
          password: password.optional(),
          disabled: z.boolean().optional(),
        }),
        response: { 200: userSchema },
      },
    },
    async (request) => {
      const { role, password: given, disabled } = request.body;
      const user = await accounts.updateUser(request.params.name, {
        ...(role === undefined ? {} : { role }),
        ...(given === undefined ? {} : { password: given }),
        ...(disabled === undefined ? {} : { disabled }),
      });
      return userView(user);
    },
  );

  server.delete(
    "/api/v1/users/:name",
    {
      config: { role: "admin" },
      schema: {
        summary: "Remove a user with their sessions and tokens",
        description: "The last admin cannot be removed.",
        tags: ["users"],
        params: byName,
      },
    },
    async (request, reply) => {
      await accounts.removeUser(request.params.name);
      return reply.code(204).send();
    },
  );
};

export default users;
