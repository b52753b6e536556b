/**
 * OctoPrint's file API on its `local` storage, as octoprint/server/api/files.py (1.11) does it:
 * listings (`/api/files`, `/api/files/local`, `?recursive=true`), an entry's details, uploads and
 * folder creation (multipart POST), file commands (select, unselect, copy, move, analyse, slice),
 * delete, and the download route `/downloads/files/local/…` with byte ranges. The printer's SD card
 * (`sdcard`) exists and is never ready.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { abort, isTrue, readCommand, sendJson, sendNoContent } from "./http.ts";
import { extensionOf, InvalidNameError, sanitizeName } from "./names.ts";
import { parseUpload, type UploadedFile } from "./upload.ts";
import { isInside, nodePath, type SimFile, type SimFolder, type SimNode, type OctoStorage } from "./tree.ts";
import { addedJson, childrenJson, downloadUrl, entryJson, resourceUrl, type WireContext } from "./wire.ts";

/** What the file API needs of the printer. */
export interface JobPort {
  /** Connected and not in error (OctoPrint's `is_operational`). */
  operational(): boolean;
  /** Printing or paused: the job's file may not be changed. */
  busy(): boolean;
  /** The selected file, whether it prints or not. */
  selected(): SimFile | undefined;
  /** Selects `file` (and starts it when `print`). */
  select(file: SimFile, print: boolean): void;
  unselect(): void;
}

/** Checks the request's API key (with the form's values, once an upload's body is read); throws 403. */
export type Authorize = (form?: Map<string, string>) => void;

/** An upload in progress, for the control API and tests. */
export interface InflightUpload {
  filename: string;
  transferred: number;
}

export interface FilesContext {
  storage: OctoStorage;
  jobs: JobPort;
  /** ms since the epoch */
  clock: () => number;
  storeContent: boolean;
  /** Print file extensions the server takes (stock OctoPrint: gcode, gco, g, gc~). */
  extensions: readonly string[];
  /** OctoPrint's `server.uploads.maxSize` (1 GiB): a longer body is cut off unanswered. */
  maxUploadSize: number;
  /** Awaited after each chunk an upload takes (holds, rate limit, injected resets). */
  afterChunk(req: IncomingMessage, bytes: number, total: number): Promise<void> | void;
  inflight: Set<InflightUpload>;
  wire(req: IncomingMessage): WireContext;
}

const nowSeconds = (ctx: FilesContext) => Math.floor(ctx.clock() / 1000);

/** The names of a request path ("a%20b/c.gcode"), decoded as werkzeug's path converter does. */
export function pathNames(raw: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw abort(404);
  }
  return decoded.split("/").filter((name) => name !== "" && name !== ".");
}

/**
 * `sanitize_path` of folder names: each sanitized, ".." resolved; undefined when the path leaves
 * the storage or a name is refused.
 */
function sanitizePath(names: readonly string[]): string[] | undefined {
  const out: string[] = [];
  try {
    for (const name of names) {
      if (name === "..") {
        if (out.pop() === undefined) return undefined;
      } else {
        const clean = sanitizeName(name);
        if (clean !== "") out.push(clean);
      }
    }
  } catch (error) {
    if (error instanceof InvalidNameError) return undefined;
    throw error;
  }
  return out;
}

/** The entry at a path with every name sanitized (OctoPrint's `file_exists`, `folder_exists`). */
function lookupSanitized(storage: OctoStorage, names: readonly string[]): SimNode | undefined {
  const clean = sanitizePath(names);
  return clean && storage.resolve(clean);
}

/** GET's lookup: the folders sanitized, the last name compared as given (`_getFileDetails`). */
function lookupDetails(storage: OctoStorage, names: readonly string[]): SimNode | undefined {
  const folders = sanitizePath(names.slice(0, -1));
  const last = names.at(-1);
  if (!folders || last === undefined) return undefined;
  const parent = storage.resolve(folders);
  return parent?.kind === "folder" ? parent.children.get(last) : undefined;
}

function isPrintFile(ctx: FilesContext, name: string): boolean {
  return ctx.extensions.includes(extensionOf(name));
}

/** Printing or paused with its file at or below `node` (`_isBusy`). */
function inUse(ctx: FilesContext, node: SimNode): boolean {
  const selected = ctx.jobs.selected();
  return ctx.jobs.busy() && selected !== undefined && isInside(selected, node);
}

/** Request values: the query string wins over form fields (werkzeug's CombinedMultiDict). */
function values(req: IncomingMessage, fields: Map<string, string> = new Map()): Map<string, string> {
  const merged = new Map(fields);
  const query = new URL(req.url ?? "/", "http://sim").searchParams;
  for (const key of new Set(query.keys())) merged.set(key, query.get(key) ?? "");
  return merged;
}

export function storageListing(ctx: FilesContext, req: IncomingMessage): Record<string, unknown> {
  const recursive = isTrue(values(req).get("recursive"));
  return {
    files: childrenJson(ctx.wire(req), ctx.storage.root, recursive ? Infinity : 0),
    free: ctx.storage.free,
    total: ctx.storage.capacity,
  };
}

/** `/api/files/…` below `/api/files/`: `raw` is "local", "local/a/b.gcode", "sdcard", … */
export async function handleFiles(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  raw: string,
  authorize: Authorize,
): Promise<void> {
  const slash = raw.indexOf("/");
  const origin = slash < 0 ? raw : raw.slice(0, slash);
  const rest = slash < 0 ? "" : raw.slice(slash + 1);
  const names = pathNames(rest);
  const method = req.method ?? "GET";
  if (origin !== "local" && origin !== "sdcard") throw abort(404);
  if (origin === "sdcard") {
    authorize();
    return sdcard(req, res, method, names);
  }

  if (names.length === 0 && rest === "") {
    if (method === "GET") return sendJson(res, 200, storageListing(ctx, req));
    if (method === "POST") return upload(req, res, ctx, authorize);
    throw abort(405);
  }
  switch (method) {
    case "GET": {
      const node = lookupDetails(ctx.storage, names);
      if (!node) throw abort(404);
      const recursive = isTrue(values(req).get("recursive"));
      return sendJson(res, 200, entryJson(ctx.wire(req), node, recursive ? Infinity : 1));
    }
    case "POST":
      return command(req, res, ctx, names);
    case "DELETE":
      return remove(res, ctx, names);
    default:
      throw abort(405);
  }
}

/** The printer's SD card: listed empty, refusing uploads, as while it is not initialized. */
async function sdcard(
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  names: string[],
): Promise<void> {
  if (method === "GET" && names.length === 0) return sendJson(res, 200, { files: [] });
  if (method === "GET" || method === "DELETE") throw abort(404);
  if (method === "POST" && names.length === 0) {
    req.resume();
    throw abort(409, "Can not upload to SD card, not yet initialized");
  }
  if (method === "POST") {
    await readCommand(req, { select: [], unselect: [], copy: ["destination"], move: ["destination"] });
    throw abort(404);
  }
  throw abort(405);
}

/** POST /api/files/local: an upload (`file`) or a new folder (`foldername`). */
async function upload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  authorize: Authorize,
): Promise<void> {
  const type = req.headers["content-type"] ?? "";
  if (type.toLowerCase().startsWith("multipart/")) {
    const length = req.headers["content-length"];
    if (length === undefined) throw abort(411, "No Content-Length supplied");
    // Tornado refuses a body over the limit before reading it, and just closes the connection.
    if (Number(length) > ctx.maxUploadSize) {
      req.socket.destroy();
      return;
    }
  }
  const inflight: InflightUpload = { filename: "", transferred: 0 };
  ctx.inflight.add(inflight);
  let parsed;
  try {
    parsed = type.toLowerCase().startsWith("multipart/form-data")
      ? await parseUpload(req, {
          storeContent: ctx.storeContent,
          afterChunk: async (bytes, total) => {
            inflight.transferred = total;
            await ctx.afterChunk(req, bytes, total);
          },
        })
      : { fields: new Map<string, string>(), file: undefined };
  } finally {
    ctx.inflight.delete(inflight);
  }
  if (!req.complete) req.resume();
  authorize(parsed.fields);
  const vals = values(req, parsed.fields);
  if (parsed.file) return storeUpload(req, res, ctx, parsed.file, vals);
  if (vals.has("foldername")) return createFolder(req, res, ctx, vals);
  throw abort(400, "No file to upload and no folder to create");
}

function storeUpload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  file: UploadedFile,
  vals: Map<string, string>,
): void {
  const userdata = vals.get("userdata");
  if (userdata !== undefined) {
    try {
      JSON.parse(userdata);
    } catch {
      throw abort(400, "userdata contains invalid JSON");
    }
  }
  const selectRequest = isTrue(vals.get("select"));
  const printRequest = isTrue(vals.get("print"));
  const ready = ctx.jobs.operational() && !ctx.jobs.busy();
  const toSelect = selectRequest && ready;
  const toPrint = printRequest && ready;

  // canonicalize(): a file name may carry folders; `path` and `filename` values override.
  const parts = file.filename.split("/");
  let display = parts.pop() ?? "";
  let folderNames = parts;
  const pathValue = vals.get("path");
  if (pathValue) folderNames = pathValue.split("/");
  const filenameValue = vals.get("filename");
  if (filenameValue) display = filenameValue;
  const folders = sanitizePath(folderNames.filter((n) => n !== "" && n !== "."));
  let name: string | undefined;
  try {
    name = sanitizeName(display);
  } catch {
    name = undefined;
  }
  if (!folders || name === undefined) throw abort(400, "Can not upload file, invalid file name");

  const existing = ctx.storage.resolve([...folders, name]);
  const selected = ctx.jobs.selected();
  if (existing && existing === selected && ctx.jobs.busy()) {
    throw abort(409, "Trying to overwrite file that is currently being printed");
  }
  if (existing?.kind === "file" && isTrue(vals.get("noOverwrite"))) {
    throw abort(409, "File already exists and noOverwrite was set");
  }
  if (!isPrintFile(ctx, name)) throw abort(415, "Could not upload file, invalid type");
  if (existing?.kind === "folder") throw abort(409, "File or folder already exists");
  if (file.size > ctx.storage.free + (existing?.kind === "file" ? existing.size : 0)) {
    throw abort(500, "[Errno 28] No space left on device");
  }
  const now = nowSeconds(ctx);
  const parent = makeFolders(ctx, folders, now);
  const stored = ctx.storage.putFile(
    parent,
    name,
    display,
    { content: file.content, size: file.size, hash: file.sha1 },
    now,
  );
  if (toSelect || toPrint || existing === selected) ctx.jobs.select(stored, toPrint);
  const wire = ctx.wire(req);
  const path = nodePath(stored);
  sendJson(
    res,
    201,
    {
      files: {
        local: {
          name,
          path,
          origin: "local",
          refs: { resource: resourceUrl(wire, path), download: downloadUrl(wire, path) },
        },
      },
      done: true,
      effectiveSelect: toSelect,
      effectivePrint: toPrint,
    },
    { Location: resourceUrl(wire, path) },
  );
}

/** `os.makedirs` of the upload's folders: missing ones are made under their sanitized names. */
function makeFolders(ctx: FilesContext, names: readonly string[], now: number): SimFolder {
  let folder = ctx.storage.root;
  for (const name of names) {
    const next = folder.children.get(name);
    if (next?.kind === "file") throw abort(500, "[Errno 20] Not a directory");
    folder = next ?? ctx.storage.addFolder(folder, name, name, now);
  }
  return folder;
}

function createFolder(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  vals: Map<string, string>,
): void {
  const given = (vals.get("foldername") ?? "").split("/");
  const display = given.pop() ?? "";
  let name: string | undefined;
  try {
    name = sanitizeName(display);
  } catch {
    name = undefined;
  }
  let folders = sanitizePath(given.filter((n) => n !== ""));
  if (!name || !folders) throw abort(400, "folder name is empty");
  const pathValue = vals.get("path");
  if (pathValue) folders = sanitizePath(pathValue.split("/").filter((n) => n !== ""));
  if (!folders) throw abort(400, "folder name is empty");
  if (isPrintFile(ctx, name)) throw abort(409, "Can't create folder, please try another name");
  const parent = ctx.storage.resolve(folders);
  if (parent?.kind !== "folder") throw abort(500, "[Errno 2] No such file or directory");
  let node = parent.children.get(name);
  if (!node) node = ctx.storage.addFolder(parent, name, display, nowSeconds(ctx));
  else if (display !== name) ctx.storage.setDisplay(node, display);
  const wire = ctx.wire(req);
  sendJson(
    res,
    201,
    { folder: addedJson(wire, node), done: true },
    { Location: resourceUrl(wire, nodePath(node)) },
  );
}

function remove(res: ServerResponse, ctx: FilesContext, names: readonly string[]): void {
  const node = lookupSanitized(ctx.storage, names);
  if (!node?.parent) throw abort(404);
  if (inUse(ctx, node)) {
    throw abort(
      409,
      node.kind === "file"
        ? "Trying to delete a file that is currently in use"
        : "Trying to delete a folder that contains a file that is currently in use",
    );
  }
  const selected = ctx.jobs.selected();
  if (selected && isInside(selected, node)) ctx.jobs.unselect();
  // A folder goes with everything in it (shutil.rmtree).
  ctx.storage.remove(node, nowSeconds(ctx));
  sendNoContent(res);
}

const FILE_COMMANDS = {
  select: [],
  unselect: [],
  slice: [],
  analyse: [],
  copy: ["destination"],
  move: ["destination"],
  uploadSd: [],
} as const;

async function command(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  names: readonly string[],
): Promise<void> {
  const { command: name, data } = await readCommand(req, FILE_COMMANDS);
  const node = lookupSanitized(ctx.storage, names);
  switch (name) {
    case "select": {
      if (node?.kind !== "file") throw abort(404);
      if (!isPrintFile(ctx, node.name))
        throw abort(415, "Cannot select file for printing, not a machinecode file");
      if (ctx.jobs.busy()) throw abort(409, "Printer is already printing, cannot select a new file");
      const print = isTrue(data.print);
      if (print && !ctx.jobs.operational()) {
        throw abort(409, "Printer is not operational, cannot directly start printing");
      }
      ctx.jobs.select(node, print);
      return sendNoContent(res);
    }
    case "unselect": {
      if (ctx.jobs.busy()) throw abort(409, "Printer is already printing, cannot unselect current file");
      const selected = ctx.jobs.selected();
      if (!selected) throw abort(409, "Cannot unselect current file when there is no file selected");
      if (names.join("/") !== "current" && names.join("/") !== nodePath(selected)) {
        throw abort(400, "Only the currently selected file can be unselected");
      }
      ctx.jobs.unselect();
      return sendNoContent(res);
    }
    case "analyse":
      if (!node) throw abort(404);
      return sendNoContent(res);
    case "slice":
      if (!node) throw abort(404);
      throw abort(415, "Cannot slice file, no slicer available");
    case "uploadSd":
      throw abort(409, "Can not upload to SD card, not yet initialized");
    default:
      return copyOrMove(req, res, ctx, names, node, name === "move", String(data.destination));
  }
}

/** Copies or moves a file or folder to a folder (keeping its name) or to a new path (a rename). */
function copyOrMove(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  names: readonly string[],
  node: SimNode | undefined,
  move: boolean,
  destination: string,
): void {
  if (!node?.parent) throw abort(404);
  const source = nodePath(node);
  const destNames = destination.split("/").filter((n) => n !== "" && n !== ".");
  const destFolders = sanitizePath(destNames.slice(0, -1));
  let destName: string | undefined;
  try {
    destName = destNames.length === 0 ? "" : sanitizeName(destNames.at(-1) ?? "");
  } catch {
    destName = undefined;
  }
  if (!destFolders || destName === undefined)
    throw abort(409, "Exception thrown by storage, bad folder/file name?");
  const sanitizedDestination = [...destFolders, destName].filter((n) => n !== "");
  const target = ctx.storage.resolve(sanitizedDestination);
  let parentNames = destFolders;
  let finalName = destName === "" ? node.name : destName;
  let display = destName === "" ? ctx.storage.display(node) : (destNames.at(-1) ?? ctx.storage.display(node));
  if (target?.kind === "folder" && sanitizedDestination.join("/") !== source) {
    // An existing folder: into it, under the same name.
    parentNames = sanitizedDestination;
    finalName = node.name;
    display = ctx.storage.display(node);
  }
  const parent = ctx.storage.resolve(parentNames);
  const occupied = parent?.kind === "folder" ? parent.children.get(finalName) : undefined;
  if (occupied && occupied !== node) throw abort(409, "File or folder does already exist");
  if (parent?.kind !== "folder")
    throw abort(500, `Could not ${move ? "move" : "copy"} ${names.join("/")} to ${destination}`);
  if (node.kind === "folder" && isInside(parent, node)) {
    throw abort(500, `Could not ${move ? "move" : "copy"} ${names.join("/")} to ${destination}`);
  }
  if (node.kind === "file" && !isPrintFile(ctx, finalName)) {
    throw abort(
      415,
      `Could not ${move ? "move" : "copy"} ${names.join("/")} to ${destination}, invalid type`,
    );
  }
  const now = nowSeconds(ctx);
  let result: SimNode;
  if (move) {
    if (inUse(ctx, node)) throw abort(409, "Trying to move a file or folder that is currently in use");
    if (ctx.jobs.selected() === node) ctx.jobs.unselect();
    ctx.storage.remove(node, now);
    result = placeInto(ctx, node, parent, finalName, display, now, true);
  } else {
    result = placeInto(ctx, node, parent, finalName, display, now, false);
  }
  const wire = ctx.wire(req);
  const path = nodePath(result);
  const refs: Record<string, string> = { resource: resourceUrl(wire, path) };
  if (result.kind === "file") refs.download = downloadUrl(wire, path);
  sendJson(res, 201, { name: node.name, path, origin: "local", refs }, { Location: refs.resource ?? "" });
}

/**
 * Puts `node` (a file or a folder with everything below it) under `parent` as `name`: a moved
 * file keeps its date (os.rename), a copy gets `now`.
 */
function placeInto(
  ctx: FilesContext,
  node: SimNode,
  parent: SimFolder,
  name: string,
  display: string,
  now: number,
  moved: boolean,
): SimNode {
  if (node.kind === "file") {
    const data = { content: node.content, size: node.size, hash: ctx.storage.hash(node) };
    return ctx.storage.putFile(parent, name, display, data, moved ? node.mTimestamp : now);
  }
  const folder = ctx.storage.addFolder(parent, name, display, now);
  for (const child of [...node.children.values()]) {
    placeInto(ctx, child, folder, child.name, ctx.storage.display(child), now, moved);
  }
  return folder;
}

/** GET /downloads/files/local/<path>: the file's bytes; one byte range (206) when asked for. */
export function handleDownload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  raw: string,
): void {
  if (req.method !== "GET" && req.method !== "HEAD") throw abort(405);
  const node = ctx.storage.resolve(pathNames(raw));
  if (node?.kind !== "file") throw abort(404);
  if (!node.content) throw abort(404, "this simulator keeps file sizes only (storeContent: false)");
  const headers: Record<string, string | number> = {
    "Content-Type": "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(node.name)}`,
    "Last-Modified": new Date(node.mTimestamp * 1000).toUTCString(),
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
  let body = node.content;
  let status = 200;
  if (range && (range[1] !== "" || range[2] !== "")) {
    const size = node.size;
    let start = range[1] === "" ? Math.max(0, size - Number(range[2])) : Number(range[1]);
    let end = range[1] === "" || range[2] === "" ? size - 1 : Math.min(size - 1, Number(range[2]));
    if (range[1] === "") end = size - 1;
    if (start >= size || start > end) {
      res.writeHead(416, { "Content-Range": `bytes */${size}`, "Content-Length": 0 });
      res.end();
      return;
    }
    start = Math.max(0, start);
    end = Math.max(start, end);
    body = node.content.subarray(start, end + 1);
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  }
  headers["Content-Length"] = body.length;
  res.writeHead(status, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}
