/**
 * The JSON of OctoPrint's file API (the pre-2.0.0 shapes every OctoPrint 1.x answers, and 2.0 too
 * when a client asks for no API version): file and folder entries as `_getFileList` builds them
 * from the storage's listing and metadata.
 */
import { pyQuote } from "./http.ts";
import { nodePath, walkFiles, type OctoStorage, type SimFile, type SimFolder, type SimNode } from "./tree.ts";

export interface WireContext {
  /** "http://host:port" as the client addressed the server (Flask's `_external` URLs use it). */
  origin: string;
  storage: OctoStorage;
  /** The user files are stored for (the API key's owner). */
  user: string;
  /** The G-code analysis of a file, when it has one (OctoPrint analyses uploads in the background). */
  analysis(file: SimFile): Record<string, unknown> | undefined;
  /** The prints of a file (OctoPrint's history). */
  history(file: SimFile): readonly { success: boolean; date: number; printTime: number }[];
}

export const resourceUrl = (ctx: WireContext, path: string) =>
  `${ctx.origin}/api/files/local/${pyQuote(path)}`;
export const downloadUrl = (ctx: WireContext, path: string) =>
  `${ctx.origin}/downloads/files/local/${pyQuote(path)}`;

function fileJson(ctx: WireContext, file: SimFile): Record<string, unknown> {
  const path = nodePath(file);
  const entry: Record<string, unknown> = {
    hash: ctx.storage.hash(file),
    links: [],
    notes: [],
    user: ctx.user,
    name: file.name,
    display: ctx.storage.display(file),
    path,
    type: "machinecode",
    typePath: ["machinecode", "gcode"],
    size: file.size,
    date: file.mTimestamp,
    origin: "local",
    refs: { resource: resourceUrl(ctx, path), download: downloadUrl(ctx, path) },
  };
  const analysis = ctx.analysis(file);
  if (analysis) entry.gcodeAnalysis = analysis;
  const history = ctx.history(file);
  const last = history.at(-1);
  if (last) {
    entry.prints = {
      success: history.filter((h) => h.success).length,
      failure: history.filter((h) => !h.success).length,
      last: { success: last.success, date: last.date, printTime: last.printTime },
    };
  }
  return entry;
}

/**
 * A folder with its children down to `depth` more levels (0: children as an empty list, as
 * OctoPrint strips them); its size counts every file below it whatever the depth.
 */
function folderJson(ctx: WireContext, folder: SimFolder, depth: number): Record<string, unknown> {
  const path = nodePath(folder);
  let size = 0;
  for (const file of walkFiles(folder)) size += file.size;
  return {
    name: folder.name,
    display: ctx.storage.display(folder),
    path,
    type: "folder",
    typePath: ["folder"],
    date: folder.mTimestamp,
    children: depth > 0 ? childrenJson(ctx, folder, depth - 1) : [],
    size,
    origin: "local",
    prints: { success: 0, failure: 0 },
    refs: { resource: resourceUrl(ctx, path) },
  };
}

/** An entry with its children down to `depth` levels below it (Infinity: the whole tree). */
export function entryJson(ctx: WireContext, node: SimNode, depth: number): Record<string, unknown> {
  return node.kind === "file" ? fileJson(ctx, node) : folderJson(ctx, node, depth);
}

export function childrenJson(ctx: WireContext, folder: SimFolder, depth: number): Record<string, unknown>[] {
  return [...folder.children.values()].map((child) => entryJson(ctx, child, depth));
}

/** What an upload or a folder creation answers for the new entry. */
export function addedJson(ctx: WireContext, node: SimNode): Record<string, unknown> {
  const path = nodePath(node);
  const refs: Record<string, string> = { resource: resourceUrl(ctx, path) };
  if (node.kind === "file") refs.download = downloadUrl(ctx, path);
  return { name: node.name, path, origin: "local", refs };
}
