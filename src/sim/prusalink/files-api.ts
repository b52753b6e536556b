/**
 * /api/v1/files/{storage}/{path}: metadata (GET, HEAD), upload and folder creation (PUT), start a
 * print (POST), delete (DELETE); plus the download link /api/files/{storage}/{path}/raw.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { invalidNameReason } from "./fat-names.ts";
import { flagHeader, printAfterUpload, sendEmpty, sendJson, SimHttpError } from "./http-util.ts";
import { Pacer } from "./pacer.ts";
import {
  nodeNames,
  type SimFolder,
  type SimNode,
  type SimStorage,
  type VirtualPrinter,
} from "../printer/index.ts";
import { fileInfoJson } from "./wire.ts";

export interface FilesContext {
  printer: VirtualPrinter;
  /** Upload ingest limit in bytes per second; undefined = unlimited. */
  rate: number | undefined;
  storeContent: boolean;
}

interface FilePath {
  storage: SimStorage;
  names: string[];
  /** The request path ended in "/" (a folder). */
  folder: boolean;
  /** Why a name cannot be stored (only with `deferInvalid`; otherwise that is a 400 at once). */
  invalid?: string;
}

/** What the firmware answers when it cannot rename an upload's temp file into place. */
const cannotRename = () =>
  new SimHttpError(422, "Unprocessable Entity", "Filename contains invalid characters");

/** Names the firmware takes an upload for (`filename_is_gcode`). */
const isGcodeUpload = (name: string) => /\.(gcode|bgcode|gco|g)$/i.test(name);

/**
 * Splits "usb/a%20b/c.gcode" into its storage and decoded, validated names. An upload
 * (`deferInvalid`) learns of a bad name only when its temp file will not rename, so it says why
 * in `invalid` instead of a 400.
 */
function parseFilePath(printer: VirtualPrinter, raw: string, deferInvalid = false): FilePath {
  const parts = raw.split("/");
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new SimHttpError(400, "Bad Request", `bad percent-encoding in ${JSON.stringify(part)}`);
    }
  };
  const storageName = decode(parts[0] ?? "");
  const storage = printer.storage(storageName);
  if (!storage) throw new SimHttpError(404, "Not Found", `no storage "${storageName}"`);
  const names = parts
    .slice(1)
    .filter((part) => part !== "")
    .map(decode);
  const folder = raw.endsWith("/") && names.length > 0;
  for (const name of names) {
    const reason = invalidNameReason(name);
    if (reason === undefined) continue;
    if (deferInvalid) return { storage, names, folder, invalid: reason };
    throw new SimHttpError(400, "Bad Request", reason);
  }
  return { storage, names, folder };
}

function mustResolve(path: FilePath): SimNode {
  const node = path.storage.resolve(path.names);
  if (!node)
    throw new SimHttpError(404, "Not Found", `/${path.storage.name}/${path.names.join("/")} does not exist`);
  return node;
}

function displayPath(path: FilePath): string {
  return `/${path.storage.name}/${path.names.join("/")}`;
}

/**
 * The folder `names` leads to; with `create`, missing ones are made (unless `dryRun`). Undefined
 * when one is missing and not made.
 */
function findFolder(
  storage: SimStorage,
  names: readonly string[],
  create: boolean,
  now: number,
  dryRun: boolean,
): SimFolder | undefined {
  let folder = storage.root;
  for (const name of names) {
    const next = storage.lookup(folder, name);
    if (next?.kind === "file")
      throw new SimHttpError(409, "Conflict", `${next.name} is a file, not a folder`);
    if (next) {
      folder = next;
      continue;
    }
    if (!create || dryRun) return undefined;
    folder = storage.addFolder(folder, name, now);
  }
  return folder;
}

export async function handleFiles(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  raw: string,
): Promise<void> {
  const { printer } = ctx;
  const path = parseFilePath(printer, raw, req.method === "PUT" && !raw.endsWith("/"));
  switch (req.method) {
    case "GET": {
      sendJson(res, 200, fileInfoJson(path.storage, mustResolve(path)));
      return;
    }
    case "HEAD": {
      const node = mustResolve(path);
      sendEmpty(res, 200, {
        "Read-Only": String(path.storage.readOnly),
        "Currently-Printed": String(printer.isPrinted(node) && node.kind === "file"),
      });
      return;
    }
    case "POST": {
      printer.startPrint(path.storage, mustResolve(path));
      sendEmpty(res, 204);
      return;
    }
    case "DELETE": {
      const node = mustResolve(path);
      if (!node.parent) throw new SimHttpError(409, "Conflict", "a storage cannot be deleted");
      if (path.storage.readOnly)
        throw new SimHttpError(409, "Conflict", `/${path.storage.name} is read-only`);
      if (printer.isPrinted(node))
        throw new SimHttpError(409, "Conflict", `${displayPath(path)} is being printed`);
      if (node.kind === "folder" && node.children.size > 0 && !flagHeader(req, "Force")) {
        throw new SimHttpError(409, "Conflict", `${displayPath(path)} is not empty (send Force: ?1)`);
      }
      path.storage.remove(node);
      sendEmpty(res, 204);
      return;
    }
    case "PUT":
      if (path.folder) createFolder(req, res, ctx, path);
      else await upload(req, res, ctx, path);
      return;
    default:
      throw new SimHttpError(405, "Method Not Allowed", `${req.method ?? "?"} is not supported here`, {
        Allow: "GET, HEAD, PUT, POST, DELETE",
      });
  }
}

const nowSeconds = (printer: VirtualPrinter) => Math.floor(printer.clock() / 1000);

/** PUT of a path ending in "/" with an empty body creates that folder (Ferry's reading of the API). */
function createFolder(req: IncomingMessage, res: ServerResponse, ctx: FilesContext, path: FilePath): void {
  if (Number(req.headers["content-length"] ?? "0") !== 0 || req.headers["transfer-encoding"] !== undefined) {
    throw new SimHttpError(400, "Bad Request", "a folder is created with an empty body");
  }
  if (path.storage.readOnly) throw new SimHttpError(409, "Conflict", `/${path.storage.name} is read-only`);
  const now = nowSeconds(ctx.printer);
  const name = path.names.at(-1) ?? "";
  const parent = findFolder(
    path.storage,
    path.names.slice(0, -1),
    flagHeader(req, "Create-Folder"),
    now,
    false,
  );
  if (!parent)
    throw new SimHttpError(404, "Not Found", "a parent folder does not exist (send Create-Folder: ?1)");
  const existing = path.storage.lookup(parent, name);
  if (existing) throw new SimHttpError(409, "Conflict", `${displayPath(path)} already exists`);
  path.storage.addFolder(parent, name, now);
  sendEmpty(res, 201);
}

/**
 * PUT of a file, in the order the Buddy firmware checks (lib/WUI/nhttp/gcode_upload.cpp): length,
 * the one transfer slot, space; then the name (415 not G-code; 409 the printed file with Overwrite;
 * 409 an existing file without it; 422 when the temp file cannot be renamed into place — a
 * missing folder or a name FAT refuses); after the body, the rename and Print-After-Upload.
 */
async function upload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  path: FilePath,
): Promise<void> {
  const { printer } = ctx;
  const { storage } = path;
  const lengthHeader = req.headers["content-length"];
  if (req.headers["transfer-encoding"] !== undefined || lengthHeader === undefined) {
    throw new SimHttpError(
      411,
      "Length Required",
      "uploads need a Content-Length (chunked bodies are refused)",
    );
  }
  const size = Number(lengthHeader);
  if (!Number.isSafeInteger(size) || size < 0)
    throw new SimHttpError(400, "Bad Request", "bad Content-Length");
  if (printer.transfer) throw new SimHttpError(409, "Conflict", "Another transfer in progress");
  if (storage.readOnly) throw new SimHttpError(409, "Conflict", `/${storage.name} is read-only`);
  const name = path.names.at(-1);
  if (name === undefined) throw new SimHttpError(409, "Conflict", "cannot upload onto a storage");
  const overwrite = flagHeader(req, "Overwrite");
  const createFolders = flagHeader(req, "Create-Folder");
  const toPrint = printAfterUpload(req);
  const parentNames = path.names.slice(0, -1);
  const now = nowSeconds(printer);

  if (!isGcodeUpload(name)) throw new SimHttpError(415, "Unsupported Media Type", "Not a GCODE");
  if (path.invalid !== undefined) throw cannotRename();
  const existingParent = findFolder(storage, parentNames, createFolders, now, true);
  const existing = existingParent && storage.lookup(existingParent, name);
  if (overwrite) {
    if (existing && printer.isPrinted(existing)) throw new SimHttpError(409, "Conflict", "File is busy");
  } else {
    if (existing) throw new SimHttpError(409, "Conflict", "File already exists");
    if (existingParent === undefined && !createFolders) throw cannotRename();
  }
  if (existing?.kind === "folder")
    throw new SimHttpError(409, "Conflict", `${displayPath(path)} is a folder`);
  if (size > storage.free + (existing?.size ?? 0)) {
    throw new SimHttpError(507, "Insufficient Storage", "USB drive full");
  }

  const longPath = [...parentNames, existing?.name ?? name].join("/");
  const transfer = printer.beginTransfer(storage, longPath, size, toPrint);
  const resetAfter = printer.resetAfterBytes;
  printer.resetAfterBytes = undefined;
  const chunks: Buffer[] = [];
  // A pacer per upload: an idle printer earns no credit to ingest the next file faster.
  const pacer = ctx.rate === undefined ? undefined : new Pacer(ctx.rate);
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      // Held uploads leave the chunk untaken and the stream paused, so TCP pushes back.
      if (printer.uploadsHeld) await printer.uploadGate();
      if (resetAfter !== undefined && transfer.transferred + chunk.length >= resetAfter) {
        req.socket.destroy();
        return;
      }
      if (ctx.storeContent) chunks.push(chunk);
      transfer.transferred += chunk.length;
      await pacer?.take(chunk.length);
    }
  } catch {
    // The client went away: the upload leaves nothing behind.
    return;
  } finally {
    printer.endTransfer(transfer);
  }
  if (transfer.transferred !== size) throw new SimHttpError(400, "Bad Request", "Truncated body");
  // The rename into place: the folder must exist now (made now with Create-Folder: ?1).
  const parent = findFolder(storage, parentNames, createFolders, nowSeconds(printer), false);
  if (!parent) throw cannotRename();
  const current = storage.lookup(parent, name);
  if (current?.kind === "folder")
    throw new SimHttpError(409, "Conflict", `${displayPath(path)} became a folder`);
  if (current && !overwrite) throw new SimHttpError(409, "Conflict", "File already exists");
  if (current && printer.isPrinted(current)) throw new SimHttpError(409, "Conflict", "File is busy");
  const content = ctx.storeContent ? Buffer.concat(chunks, size) : undefined;
  const file = storage.putFile(parent, name, content, size, nowSeconds(printer));
  if (toPrint) {
    try {
      printer.startPrint(storage, file);
    } catch {
      // The file stays stored; the printer says it cannot print it now.
      throw new SimHttpError(409, "Conflict", "Can't print right now");
    }
  }
  sendEmpty(res, 201, {
    Location: `/api/v1/files/${storage.name}/${nodeNames(file).map(encodeURIComponent).join("/")}`,
  });
}

/** GET /api/files/{storage}/{path}/raw: the file's bytes. */
export function handleDownload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: FilesContext,
  raw: string,
): void {
  if (req.method !== "GET") throw new SimHttpError(405, "Method Not Allowed", "only GET", { Allow: "GET" });
  const path = parseFilePath(ctx.printer, raw);
  const node = mustResolve(path);
  if (node.kind !== "file") throw new SimHttpError(404, "Not Found", `${displayPath(path)} is a folder`);
  if (!node.content)
    throw new SimHttpError(404, "Not Found", "this simulator keeps file sizes only (storeContent: false)");
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": node.size });
  res.end(node.content);
}
