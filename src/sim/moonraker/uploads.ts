/**
 * POST /server/files/upload as Moonraker handles it (application.py FileUploadHandler and
 * file_manager.py finalize_upload): the multipart body streams into a temp file while a SHA-256 of
 * the file part is computed, then the optional `checksum` is compared (422 on a mismatch), the
 * destination is checked (the loaded file → 403), the folders of `path` are made, the temp file is
 * moved under its name, and the answer is 201 with the item, unwrapped.
 *
 * The temp file is named by the second the upload began on the server's monotonic clock
 * (`moonraker.upload-<s>.mru`), as Moonraker names it: two uploads that begin within the same
 * second share one temp file. The later one truncates it, both write into it, the first to finish
 * takes its content, and the other fails with 500 "Unable to save file". The simulator keeps that.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import busboy from "busboy";
import { Pacer } from "../prusalink/pacer.ts";
import { MoonrakerError } from "./errors.ts";
import { isGcodeName, type MoonrakerFace } from "./face.ts";

/** One temp file: bytes at the offsets its writers reached (content kept unless sizes only). */
class TempFile {
  readonly name: string;
  #data = Buffer.alloc(0);
  length = 0;
  moved = false;

  constructor(name: string) {
    this.name = name;
  }

  /** Opened again by another upload ("wb"): emptied. */
  truncate(): void {
    this.length = 0;
  }

  write(offset: number, chunk: Buffer, keep: boolean): void {
    const end = offset + chunk.length;
    if (keep) {
      if (end > this.#data.length) {
        const grown = Buffer.alloc(Math.max(end, this.#data.length * 2));
        this.#data.copy(grown, 0, 0, this.length);
        this.#data = grown;
      }
      // Bytes between the old end and this write's offset read as zeros (a sparse file).
      if (offset > this.length) this.#data.fill(0, this.length, offset);
      chunk.copy(this.#data, offset);
    }
    this.length = Math.max(this.length, end);
  }

  content(keep: boolean): Buffer | undefined {
    return keep ? Buffer.from(this.#data.subarray(0, this.length)) : undefined;
  }
}

export interface UploadContext {
  face: MoonrakerFace;
  /** Bytes per second, or undefined for no limit. */
  rate: number | undefined;
  storeContent: boolean;
  temps: Map<string, TempFile>;
  /** Uploads in progress, for /_sim/state. */
  active: Set<UploadProgress>;
  /** Seconds on the server's monotonic clock (the temp name). */
  monotonicS(): number;
}

export interface UploadProgress {
  filename: string;
  received: number;
  temp: string;
}

export function createUploadContext(
  face: MoonrakerFace,
  options: { rate: number | undefined; storeContent: boolean },
): UploadContext {
  return {
    face,
    ...options,
    temps: new Map(),
    active: new Set(),
    monotonicS: () => Math.floor(performance.now() / 1000),
  };
}

interface ParsedUpload {
  fields: Record<string, string>;
  filename: string | undefined;
  temp: TempFile;
  size: number;
  sha256: string;
}

async function parse(
  req: IncomingMessage,
  ctx: UploadContext,
  progress: UploadProgress,
): Promise<ParsedUpload> {
  const { face } = ctx;
  const printer = face.printer;
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: req.headers, defParamCharset: "utf8", limits: { fieldSize: 1 << 20 } });
  } catch {
    throw new MoonrakerError(500, "File Upload Parsing Failed", "log");
  }
  const tempName = `moonraker.upload-${ctx.monotonicS()}.mru`;
  progress.temp = tempName;
  let temp = ctx.temps.get(tempName);
  if (temp) temp.truncate();
  else {
    temp = new TempFile(tempName);
    ctx.temps.set(tempName, temp);
  }
  const file = temp;
  const fields: Record<string, string> = {};
  const pacer = ctx.rate === undefined ? undefined : new Pacer(ctx.rate);
  const hash = createHash("sha256");
  let filename: string | undefined;
  let size = 0;
  let seenFile = false;
  const writes: Promise<void>[] = [];

  const consume = async (stream: Readable) => {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      await printer.uploadGate();
      if (pacer) await pacer.take(chunk.length);
      if (face.storage.free < size + chunk.length)
        throw new MoonrakerError(500, "File Upload Parsing Failed", "log");
      file.write(size, chunk, ctx.storeContent);
      hash.update(chunk);
      size += chunk.length;
      progress.received = size;
    }
  };
  parser.on("field", (name, value) => {
    fields[name] = value;
  });
  parser.on("file", (name, stream, info) => {
    if (name !== "file" || seenFile) {
      stream.resume();
      return;
    }
    seenFile = true;
    filename = info.filename;
    progress.filename = info.filename ?? "";
    writes.push(consume(stream));
  });

  let bodyBytes = 0;
  const reset = printer.resetAfterBytes;
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on("close", resolve);
    parser.on("error", () => reject(new MoonrakerError(500, "File Upload Parsing Failed", "log")));
    req.on("error", reject);
    req.on("close", () => {
      if (!req.complete) reject(new MoonrakerError(400, "the client went away mid-upload", "log"));
    });
  });
  req.on("data", (chunk: Buffer) => {
    bodyBytes += chunk.length;
    if (reset !== undefined && bodyBytes >= reset) {
      printer.resetAfterBytes = undefined;
      req.socket.destroy();
    }
  });
  req.pipe(parser);
  try {
    await parsed;
    await Promise.all(writes);
  } catch (error) {
    req.unpipe(parser);
    parser.destroy();
    req.resume();
    await Promise.allSettled(writes);
    throw error;
  }
  return { fields, filename, temp: file, size, sha256: hash.digest("hex") };
}

/** Handles one upload request, writing the answer. */
export async function handleUpload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: UploadContext,
): Promise<void> {
  const progress: UploadProgress = { filename: "", received: 0, temp: "" };
  ctx.active.add(progress);
  let upload: ParsedUpload;
  try {
    upload = await parse(req, ctx, progress);
  } finally {
    ctx.active.delete(progress);
  }
  const { face } = ctx;
  const { fields, temp } = upload;
  const dropTemp = () => {
    if (ctx.temps.get(temp.name) === temp) ctx.temps.delete(temp.name);
  };
  const checksum = fields.checksum;
  if (checksum !== undefined && checksum !== "" && checksum.toLowerCase() !== upload.sha256) {
    dropTemp();
    throw new MoonrakerError(
      422,
      `File checksum mismatch: expected ${checksum.toLowerCase()}, calculated ${upload.sha256}`,
      "log",
    );
  }
  if (upload.filename === undefined || upload.filename.trim() === "") {
    dropTemp();
    throw new MoonrakerError(400, "Multipart filename omitted", "log");
  }
  const root = (fields.root ?? "gcodes").toLowerCase();
  if (root !== "gcodes") {
    dropTemp();
    throw new MoonrakerError(400, `Root ${root} not available`, "log");
  }
  const dirPath = (fields.path ?? "").replace(/^\/+/, "");
  const name = posix.join(dirPath, upload.filename.trim().replace(/^\/+/, ""));
  const dest = posix.normalize(name);
  if (dest.startsWith("..") || dest.startsWith("/")) {
    dropTemp();
    throw new MoonrakerError(400, `Cannot write to path: ${face.diskPath([dest])}`, "log");
  }
  const parts = dest.split("/");
  const gcode = isGcodeName(dest);
  const existing = face.storage.resolve(parts);
  if (gcode && existing && face.printer.isPrinted(existing)) {
    dropTemp();
    throw new MoonrakerError(403, "File is loaded, upload not permitted", "log");
  }
  // The folders of `path` are made; a folder named only in the file name must exist.
  let folder = face.storage.root;
  const dirParts =
    dirPath === ""
      ? []
      : posix
          .normalize(dirPath)
          .split("/")
          .filter((p) => p !== "");
  for (const part of dirParts) {
    const next = face.storage.lookup(folder, part);
    if (next?.kind === "file") {
      dropTemp();
      throw new MoonrakerError(500, "Unable to save file", "log");
    }
    folder = next ?? face.storage.addFolder(folder, part, face.now());
  }
  const parent = face.storage.resolve(parts.slice(0, -1));
  const base = parts.at(-1) ?? "";
  // The temp file was taken (and moved) by another upload that shared its name: nothing to move.
  if (parent?.kind !== "folder" || existing?.kind === "folder" || temp.moved) {
    dropTemp();
    throw new MoonrakerError(500, "Unable to save file", "log");
  }
  temp.moved = true;
  dropTemp();
  const stored = face.storage.putFile(parent, base, temp.content(ctx.storeContent), temp.length, face.now());
  const result: Record<string, unknown> = { item: face.item(parts, stored), action: "create_file" };
  if (gcode) {
    let started = false;
    if ((fields.print ?? "false") === "true" && face.printer.readyToPrint()) {
      try {
        face.startPrint(dest);
        started = true;
      } catch {
        // Moonraker ignores a print that fails to start here.
      }
    }
    Object.assign(result, { print_started: started, print_queued: false });
  }
  const body = JSON.stringify(result);
  const host = req.headers.host ?? "127.0.0.1";
  res.writeHead(201, {
    "Content-Type": "application/json; charset=UTF-8",
    "Content-Length": Buffer.byteLength(body),
    Location: `http://${host}/server/files/gcodes/${parts.map(encodeURIComponent).join("/")}`,
  });
  res.end(body);
}
