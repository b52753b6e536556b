/**
 * First start: GET /setup?token=… is a small page that creates the first admin through
 * POST /api/v1/setup, with the one-time token the console showed. Once an admin exists, setup
 * answers 409 for ever.
 */
import { z } from "zod";
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "../../auth/passwords.ts";
import { FerryError } from "../../core/errors.ts";
import { HttpProblem } from "../problems.ts";
import { accountName, type FerryRoutes } from "../route.ts";
import { FIRST_ADMIN } from "../setup-gate.ts";
import { userSchema, userView } from "./schemas.ts";

const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Ferry: first start</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>Ferry: create the first admin</h1>
<form id="setup">
<p><label>User name<br><input name="name" value="${FIRST_ADMIN}" required autocomplete="username"></label></p>
<p><label>Password (${PASSWORD_MIN_LENGTH} characters at least)<br>
<input name="password" type="password" minlength="${PASSWORD_MIN_LENGTH}" required autocomplete="new-password"></label></p>
<p><button>Create</button></p>
</form>
<p id="result" role="status"></p>
<script src="/setup.js"></script>
</body>
</html>
`;

const SCRIPT = `"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
history.replaceState(null, "", "/setup");
const form = document.getElementById("setup");
const result = document.getElementById("result");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { token, name: form.name.value, password: form.password.value };
  const response = await fetch("/api/v1/setup", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  result.textContent = response.ok
    ? "Done: " + answer.name + " is an admin. Sign in through the API (see /api/docs)."
    : answer.detail;
  if (response.ok) form.remove();
});
`;

const HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const setup: FerryRoutes = (server, { app, setup: gate }) => {
  server.get("/setup", { config: { role: "public" }, schema: { hide: true } }, async (_request, reply) =>
    reply.headers(HEADERS).type("text/html; charset=utf-8").send(PAGE),
  );
  server.get("/setup.js", { config: { role: "public" }, schema: { hide: true } }, async (_request, reply) =>
    reply.headers(HEADERS).type("text/javascript; charset=utf-8").send(SCRIPT),
  );

  server.post(
    "/api/v1/setup",
    {
      config: { role: "public" },
      schema: {
        summary: "First start: create the first admin with the one-time setup token",
        description: "Works only while no admin exists and only with the token the server printed at start.",
        tags: ["session"],
        body: z.strictObject({
          token: z.string().min(1).max(100),
          name: accountName.default(FIRST_ADMIN),
          password: z.string().min(PASSWORD_MIN_LENGTH).max(PASSWORD_MAX_LENGTH),
        }),
        response: { 201: userSchema },
      },
    },
    async (request, reply) => {
      const { token, name, password } = request.body;
      const done = () => new FerryError("CONFLICT", "setup is done: an admin exists; sign in instead");
      if (!gate.isOpen || (await app.stored.accounts.hasAdmin())) {
        gate.close();
        throw done();
      }
      if (!gate.accepts(token))
        throw new HttpProblem(
          403,
          "forbidden",
          "Wrong setup token",
          "this is not the setup token the server printed",
          {
            subject: "token",
          },
        );
      const user = await app.stored.accounts.addFirstAdmin(name, password);
      gate.close();
      if (!user) throw done();
      return reply.code(201).send(userView(user));
    },
  );
};

export default setup;
