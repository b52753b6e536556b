/**
 * Metadata of a 3MF (a ZIP of XML parts): the model's title and the application that wrote it
 * (`<metadata name="Title">`, `"Application"` in the model part), the slicer config PrusaSlicer
 * and SuperSlicer keep in `Metadata/Slic3r_PE.config` (`; key = value`, as at the end of their
 * G-code) or OrcaSlicer and Bambu Studio in `Metadata/project_settings.config` (JSON), the G-code
 * of a sliced 3MF (`Metadata/plate_1.gcode`, read through the G-code window), and the thumbnail
 * (the package's thumbnail relationship, `Metadata/thumbnail.png`, `Metadata/plate_1.png`).
 */
import { addPrintFacts, gcodeMetadata, hasFacts, WindowCollector } from "./gcode.ts";
import { checkedThumbnail, imageHeader } from "./images.ts";
import type { ByteSource, MetadataResult, PrintMetadata, Thumbnail } from "./types.ts";
import { readEntry, streamEntry, zipEntries, ZipProblem, type ZipEntry } from "./zip.ts";

/** The model part's metadata sits before its mesh: this much of it is read. */
const MODEL_HEAD_BYTES = 64 * 1024;
const MAX_PART_BYTES = 8 << 20;
const THUMBNAIL_TYPE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail";
const MODEL_TYPE = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel";

export async function readThreeMfMetadata(source: ByteSource): Promise<MetadataResult> {
  let entries: ZipEntry[];
  try {
    entries = await zipEntries(source);
  } catch (error) {
    if (error instanceof ZipProblem) return { metadata: null, reason: error.message, thumbnails: [] };
    throw error;
  }
  const byName = new Map(entries.map((entry) => [entry.name.toLowerCase(), entry]));
  const notes: string[] = [];
  /** A part's problem becomes a note; anything else (an I/O error) goes up. */
  const attempt = async <T>(work: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ZipProblem) {
        notes.push(error.message);
        return undefined;
      }
      throw error;
    }
  };
  const text = async (entry: ZipEntry | undefined) =>
    entry && (await attempt(async () => (await readEntry(source, entry, MAX_PART_BYTES)).toString("utf8")));

  const relationships = parseRelationships((await text(byName.get("_rels/.rels"))) ?? "");
  const metadata: PrintMetadata = { notes };
  const thumbnails: Thumbnail[] = [];

  // The model part: title and application.
  const modelName = relationships.get(MODEL_TYPE) ?? "3d/3dmodel.model";
  const model = byName.get(modelName.toLowerCase());
  if (model) {
    const chunks: Buffer[] = [];
    let bytes = 0;
    await attempt(() =>
      streamEntry(source, model, (chunk) => {
        chunks.push(chunk);
        bytes += chunk.length;
        return bytes >= MODEL_HEAD_BYTES;
      }),
    );
    const head = Buffer.concat(chunks).toString("utf8", 0, Math.min(bytes, MODEL_HEAD_BYTES));
    const title = xmlMetadata(head, "Title");
    if (title) metadata.title = title;
    const application = /^(.*?)[-\s]+(\d[^\s]*)$/.exec(xmlMetadata(head, "Application") ?? "");
    if (application?.[1]) {
      metadata.slicer = application[1];
      if (application[2]) metadata.slicerVersion = application[2];
    }
  } else {
    notes.push("no 3D model part");
  }

  // Print facts: the sliced G-code's first, then the slicer's config.
  const gcodes = entries.filter((entry) => /^metadata\/[^/]+\.gcode$/i.test(entry.name));
  if (gcodes[0]) {
    const collector = new WindowCollector();
    const gcode = gcodes[0];
    const read = await attempt(async () => {
      await streamEntry(source, gcode, (chunk) => {
        collector.push(chunk);
        return false;
      });
      return true;
    });
    if (read) merge(metadata, gcodeMetadata(collector.windows()), gcode.name);
    if (gcodes.length > 1) notes.push(`${gcodes.length} sliced plates, ${gcode.name} read`);
  }
  const prusaConfig = await text(byName.get("metadata/slic3r_pe.config"));
  if (prusaConfig !== undefined)
    merge(metadata, gcodeMetadata({ head: Buffer.from(prusaConfig) }), "Metadata/Slic3r_PE.config");
  const orcaConfig = await text(byName.get("metadata/project_settings.config"));
  if (orcaConfig !== undefined) {
    const values = jsonConfig(orcaConfig);
    if (values) {
      const facts: PrintMetadata = { notes: [] };
      addPrintFacts(facts, values, "");
      merge(metadata, { metadata: facts, thumbnails: [] }, "Metadata/project_settings.config");
    } else {
      notes.push("Metadata/project_settings.config: not a JSON object, not read");
    }
  }

  // Thumbnails: the package's, then the slicers' usual names.
  const thumbnailNames = [relationships.get(THUMBNAIL_TYPE), "metadata/thumbnail.png", "metadata/plate_1.png"]
    .filter((name): name is string => name !== undefined)
    .map((name) => name.toLowerCase());
  for (const name of new Set(thumbnailNames)) {
    const entry = byName.get(name);
    if (!entry) continue;
    const data = await attempt(() => readEntry(source, entry, MAX_PART_BYTES));
    if (!data) continue;
    const header = imageHeader(data);
    if (!header) {
      notes.push(`${entry.name}: not a PNG, JPEG or QOI image, skipped`);
      continue;
    }
    const thumbnail = checkedThumbnail(header, data, entry.name, notes);
    if (thumbnail) thumbnails.push(thumbnail);
  }

  if (!hasFacts(metadata)) {
    const why = notes.length > 0 ? `: ${notes.join("; ")}` : "";
    return { metadata: null, reason: `no print metadata in the 3MF${why}`, thumbnails };
  }
  return { metadata, thumbnails };
}

/** Adds what `found` knows and `into` does not yet; its notes and reason become notes. */
function merge(into: PrintMetadata, found: MetadataResult, where: string): void {
  if (found.metadata === null) {
    into.notes.push(`${where}: ${found.reason}`);
    return;
  }
  for (const [key, value] of Object.entries(found.metadata)) {
    if (key === "notes") continue;
    const field = key as keyof Omit<PrintMetadata, "notes">;
    if (into[field] === undefined) (into as unknown as Record<string, unknown>)[field] = value;
  }
  for (const note of found.metadata.notes) into.notes.push(`${where}: ${note}`);
}

/** Relationship targets by type, without the leading "/" of a package path. */
function parseRelationships(xml: string): Map<string, string> {
  const targets = new Map<string, string>();
  for (const match of xml.matchAll(/<Relationship\b[^>]*>/g)) {
    const target = /\bTarget="([^"]*)"/.exec(match[0])?.[1];
    const type = /\bType="([^"]*)"/.exec(match[0])?.[1];
    if (target && type && !targets.has(type)) targets.set(type, unescapeXml(target).replace(/^\//, ""));
  }
  return targets;
}

function xmlMetadata(xml: string, name: string): string | undefined {
  const match = new RegExp(`<metadata\\s+name="${name}"\\s*>([^<]*)</metadata>`).exec(xml);
  const value = match ? unescapeXml(match[1] ?? "").trim() : "";
  return value === "" ? undefined : value;
}

const unescapeXml = (text: string) =>
  text.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, entity: string) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[entity] ?? "",
  );

/** OrcaSlicer's JSON config as slicer keys: lists (one value per extruder) joined by ";". */
function jsonConfig(text: string): Map<string, string> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const values = new Map<string, string>();
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === "string" || typeof value === "number") values.set(key.toLowerCase(), String(value));
    else if (Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number")) {
      values.set(key.toLowerCase(), value.join(";"));
    }
  }
  return values;
}
