/**
 * The farm's file library (docs/farm.md): upload (multipart, streamed), list, metadata, thumbnails,
 * download (the sha256 as ETag), delete when no live job uses the file. The library is shared:
 * everyone who may read sees every file; users upload; a file is deleted by an operator, or by
 * the user who uploaded it.
 */
import { z } from "zod";
import { roleAllows } from "../../auth/roles.ts";
import { FerryError } from "../../core/errors.ts";
import type { App } from "../../app.ts";
import { THUMBNAIL_CONTENT_TYPES, type LibraryFile } from "../../farm/library/index.ts";
import { FINAL, JOB_STATES } from "../../farm/states.ts";
import { HttpProblem } from "../problems.ts";
import { identityOf, type FerryRoutes } from "../route.ts";
import { acceptMultipart, readUpload } from "../upload.ts";
import { byId, fileSchema, filePath, fileView } from "./farm-schemas.ts";

const CONTENT_TYPES: Record<LibraryFile["kind"], string> = {
  gcode: "text/x.gcode",
  bgcode: "application/octet-stream",
  "3mf": "model/3mf",
};

const LIVE_STATES = JOB_STATES.filter((state) => !FINAL.includes(state));

/** A file some job not yet finished will print (finished jobs keep its name and sha256). */
export function fileInUse(app: App): (id: string) => Promise<boolean> {
  return async (id) => (await app.farm.list({ fileId: id, state: LIVE_STATES, limit: 1 })).length > 0;
}

/** `attachment; filename=…` with an RFC 8187 form for names beyond ASCII. */
function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

const files: FerryRoutes = (server, { app }) => {
  const library = app.library;
  acceptMultipart(server);

  server.post(
    "/api/v1/files",
    {
      config: { role: "user" },
      schema: {
        summary: "Upload a print file (multipart/form-data, the file in the field `file`)",
        description:
          "Streamed into the library: .gcode, .bgcode or .3mf, at most the library's limit (413 past it). " +
          "The same bytes uploaded again are the same entry (`duplicate: true`, under its first name).",
        tags: ["files"],
        response: { 201: z.object({ file: fileSchema, duplicate: z.boolean() }) },
      },
    },
    async (request, reply) => {
      const caller = identityOf(request);
      const upload = await readUpload(request, {
        field: "file",
        maxBytes: library.maxBytes,
        store: (stream, filename) => library.add(stream, { name: filename, uploadedBy: caller.user.name }),
      });
      if (!upload.file)
        throw new HttpProblem(400, "validation", "Invalid request", 'no file: send it in the field "file"', {
          subject: "file",
        });
      const { file, duplicate } = upload.file.stored;
      return reply
        .code(201)
        .header("location", filePath(file.id))
        .send({ file: fileView(file), duplicate });
    },
  );

  server.get(
    "/api/v1/files",
    {
      config: { role: "viewer" },
      schema: {
        summary: "The library's files, newest first",
        tags: ["files"],
        querystring: z.strictObject({
          limit: z.coerce.number().int().min(1).max(500).default(100),
          offset: z.coerce.number().int().min(0).default(0),
        }),
        response: { 200: z.object({ total: z.number().int(), files: z.array(fileSchema) }) },
      },
    },
    async (request) => {
      const [list, total] = await Promise.all([library.list(request.query), library.count()]);
      return { total, files: list.map(fileView) };
    },
  );

  const require = async (id: string): Promise<LibraryFile> => {
    const file = await library.get(id);
    if (!file) throw new FerryError("NOT_FOUND", `no file ${id} in the library`, { subject: id });
    return file;
  };

  server.get(
    "/api/v1/files/:id",
    {
      config: { role: "viewer" },
      schema: {
        summary: "A file's entry: name, size, sha256, the slicer's metadata, thumbnails",
        tags: ["files"],
        params: byId,
        response: { 200: fileSchema },
      },
    },
    async (request) => fileView(await require(request.params.id)),
  );

  server.get(
    "/api/v1/files/:id/content",
    {
      config: { role: "viewer" },
      schema: {
        summary: "Download a file (ETag: its sha256; If-None-Match answers 304)",
        tags: ["files"],
        params: byId,
      },
    },
    async (request, reply) => {
      const file = await require(request.params.id);
      const etag = `"${file.sha256}"`;
      reply.header("etag", etag).header("cache-control", "private, no-cache");
      const match = request.headers["if-none-match"];
      if (match !== undefined && match.split(",").some((tag) => tag.trim() === etag || tag.trim() === "*"))
        return reply.code(304).send();
      const { stream } = await library.read(file.id);
      return reply
        .type(CONTENT_TYPES[file.kind])
        .header("content-length", file.size)
        .header("content-disposition", attachment(file.name))
        .send(stream);
    },
  );

  server.get(
    "/api/v1/files/:id/thumbnails/:index",
    {
      config: { role: "viewer" },
      schema: {
        summary: "One of a file's embedded pictures (image/png, image/jpeg or image/qoi)",
        tags: ["files"],
        params: z.strictObject({ id: byId.shape.id, index: z.coerce.number().int().min(0).max(999) }),
      },
    },
    async (request, reply) => {
      const thumbnail = await library.thumbnail(request.params.id, request.params.index);
      return reply
        .type(THUMBNAIL_CONTENT_TYPES[thumbnail.format])
        .header("cache-control", "private, max-age=86400")
        .send(thumbnail.data);
    },
  );

  server.delete(
    "/api/v1/files/:id",
    {
      config: { role: "user" },
      schema: {
        summary: "Delete a file no live job uses (operators: any; users: their own uploads)",
        tags: ["files"],
        params: byId,
      },
    },
    async (request, reply) => {
      const caller = identityOf(request);
      const file = await require(request.params.id);
      if (!roleAllows(caller.role, "operator") && file.uploadedBy !== caller.user.name)
        throw new HttpProblem(
          403,
          "forbidden",
          "Forbidden",
          `only operators delete files others uploaded; ${file.name} was uploaded by ${file.uploadedBy ?? "nobody known"}`,
          { subject: file.id },
        );
      await library.remove(file.id, { inUse: fileInUse(app) });
      return reply.code(204).send();
    },
  );
};

export default files;
