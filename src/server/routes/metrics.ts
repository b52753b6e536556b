/**
 * GET /metrics: Prometheus' text format (docs/metrics.md). Like every route but sign-in, it needs
 * a caller: Prometheus sends an API token of role viewer (`authorization.credentials_file` in its
 * scrape config), so the numbers of a farm are never open to whoever reaches the port.
 */
import type { FerryRoutes } from "../route.ts";

const metrics: FerryRoutes = (server, { metrics: registry }) => {
  server.get(
    "/metrics",
    {
      config: { role: "viewer" },
      schema: {
        summary:
          "Metrics in Prometheus' text format (printers, jobs, queue, transfers, tasks, event stream, Node)",
        tags: ["server"],
        produces: ["text/plain"],
      },
    },
    async (_request, reply) => {
      const { text, contentType } = await registry.scrape();
      return reply.type(contentType).header("cache-control", "no-store").send(text);
    },
  );
};

export default metrics;
