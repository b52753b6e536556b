/**
 * Ferry as an OctoPrint host, for slicers that send G-code to one (PrusaSlicer, OrcaSlicer and
 * SuperSlicer's "OctoPrint" physical printer): the version check they make first, and the upload.
 * The "API key" a slicer sends in `X-Api-Key` is a Ferry API token (auth.ts).
 *
 * `POST /api/files/local` stores the file in the farm's library; with `print=true` it also submits
 * a job of the file, as the caller (role user and up), subject to approval like any job of that
 * role. `select` and `path` are taken and have no effect (the library has no folders and nothing
 * is "selected"). The answer is OctoPrint's upload response (without X-OctoPrint-Api-Version: the
 * pre-2.0 shape, `files.local`), plus a `ferry` object naming the file and the jobs.
 */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { kindOfName } from "../../farm/library/index.ts";
import { HttpProblem } from "../problems.ts";
import { identityOf, type FerryRoutes } from "../route.ts";
import { acceptMultipart, readUpload } from "../upload.ts";
import { filePath } from "./farm-schemas.ts";

/** The OctoPrint version whose API this face answers as (what slicers check: the "OctoPrint" prefix, an `api`). */
export const OCTOPRINT_VERSION = "1.10.0";

/** OctoPrint's booleans in form fields. */
const TRUE = new Set(["true", "yes", "y", "1"]);
const isTrue = (value: string | undefined) => value !== undefined && TRUE.has(value.trim().toLowerCase());

const origin = (request: FastifyRequest) => `${request.protocol}://${request.host}`;

const octoprint: FerryRoutes = (server, { app }) => {
  acceptMultipart(server);

  server.get(
    "/api/version",
    {
      config: { role: "viewer" },
      schema: {
        summary: "OctoPrint: server and API version (what a slicer's connection test asks)",
        tags: ["octoprint"],
        response: { 200: z.object({ api: z.string(), server: z.string(), text: z.string() }) },
      },
    },
    () => ({
      api: "0.1",
      server: OCTOPRINT_VERSION,
      text: `OctoPrint ${OCTOPRINT_VERSION} (Ferry print farm)`,
    }),
  );

  server.get(
    "/api/server",
    {
      config: { role: "viewer" },
      schema: {
        summary: "OctoPrint: server version and safe mode (never)",
        tags: ["octoprint"],
        response: { 200: z.object({ version: z.string(), safemode: z.literal(false) }) },
      },
    },
    () => ({ version: OCTOPRINT_VERSION, safemode: false as const }),
  );

  server.post(
    "/api/files/local",
    {
      config: { role: "user" },
      schema: {
        summary: "OctoPrint: upload a file (multipart: file, path, select, print); print=true submits a job",
        description:
          "The file goes into the farm's library (.gcode, .bgcode, .3mf; 415 otherwise, 413 past the limit). " +
          "With print=true a job of it is submitted as the caller, waiting for approval when farm.approval names the caller's role.",
        tags: ["octoprint"],
        response: {
          201: z.object({
            files: z.object({
              local: z.object({
                name: z.string(),
                path: z.string(),
                origin: z.literal("local"),
                refs: z.object({ resource: z.string(), download: z.string() }),
              }),
            }),
            done: z.literal(true),
            effectiveSelect: z.boolean(),
            effectivePrint: z.boolean(),
            ferry: z.object({
              fileId: z.string(),
              duplicate: z.boolean(),
              orderId: z.string().nullable(),
              jobs: z.array(z.object({ id: z.string(), state: z.string() })),
            }),
          }),
        },
      },
    },
    async (request, reply) => {
      const caller = identityOf(request);
      const upload = await readUpload(request, {
        field: "file",
        maxBytes: app.library.maxBytes,
        store: async (stream, filename) => {
          if (!kindOfName(filename))
            throw new HttpProblem(
              415,
              "unsupported-media-type",
              "Unsupported file type",
              `${filename}: not a print file; the farm takes .gcode, .bgcode and .3mf`,
              { subject: filename },
            );
          return app.library.add(stream, { name: filename, uploadedBy: caller.user.name });
        },
      });
      if (!upload.file) {
        const folder = upload.fields.has("foldername");
        throw new HttpProblem(
          400,
          "validation",
          "Invalid request",
          folder ? "the farm's library has no folders; send a file" : 'no file: send it in the field "file"',
          { subject: folder ? "foldername" : "file" },
        );
      }
      const { file, duplicate } = upload.file.stored;
      const print = isTrue(upload.fields.get("print"));
      const jobs = print
        ? await app.farm.submit({
            file: { id: file.id, name: file.name, sha256: file.sha256 },
            owner: caller.user.name,
            role: caller.role,
          })
        : [];
      const resource = origin(request) + filePath(file.id);
      return reply
        .code(201)
        .header("location", resource)
        .send({
          files: {
            local: {
              name: file.name,
              path: file.name,
              origin: "local" as const,
              refs: { resource, download: `${resource}/content` },
            },
          },
          done: true as const,
          effectiveSelect: false,
          effectivePrint: print,
          ferry: {
            fileId: file.id,
            duplicate,
            orderId: jobs[0]?.orderId ?? null,
            jobs: jobs.map((job) => ({ id: job.id, state: job.state })),
          },
        });
    },
  );
};

export default octoprint;
