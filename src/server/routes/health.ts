/** GET /health: for load balancers and supervisors; no sign-in. 503 when the store does not answer. */
import { sql } from "kysely";
import { z } from "zod";
import { FerryError } from "../../core/errors.ts";
import type { FerryRoutes } from "../route.ts";

const health: FerryRoutes = (server, { app }) => {
  server.get(
    "/health",
    {
      config: { role: "public" },
      schema: {
        summary: "Whether the server and its store answer",
        tags: ["server"],
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
    },
    async () => {
      try {
        await sql`select 1`.execute(app.stored.store.db);
      } catch (error) {
        throw new FerryError("UNAVAILABLE", "the store does not answer", { cause: error });
      }
      return { status: "ok" as const };
    },
  );
};

export default health;
