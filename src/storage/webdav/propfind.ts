/**
 * PROPFIND: the query Ferry sends and the 207 Multi-Status it gets back. The XML (namespaces,
 * entities, single-or-many elements) is parsed by the `webdav` package; what each response means
 * for Ferry (path below the root, type, size, time) is decided here.
 */
import { parseXML, type DAVResultResponse } from "webdav";
import { FerryError } from "../../core/errors.ts";
import type { Entry } from "../adapter.ts";
import type { ErrorContext } from "./errors.ts";

/** Only what listings need: type, size and time (allprop would add locks and etags per entry). */
export const PROPFIND_QUERY =
  '<?xml version="1.0" encoding="utf-8"?>' +
  '<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>';

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A server that does not escape '%' in names: the segment is the name.
    return segment;
  }
}

/** The decoded names of an href's path, or of the root's path as sent. */
export function hrefSegments(href: string): string[] {
  // An absolute URL: keep its path. Never parse the rest as a URL: '#' and '?' may be raw names.
  const path = href.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "");
  return path
    .split("/")
    .filter((s) => s !== "")
    .map(decodeSegment);
}

/** The Ferry path an href names, or undefined when it lies outside the root. */
export function pathOfHref(href: string, base: readonly string[]): string | undefined {
  const segments = hrefSegments(href);
  if (segments.length < base.length) return undefined;
  for (const [i, name] of base.entries()) {
    if (segments[i]?.normalize("NFC") !== name.normalize("NFC")) return undefined;
  }
  return segments.slice(base.length).join("/");
}

function text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (value && typeof value === "object" && "text" in value) return text(value.text);
  return undefined;
}

function toEntry(path: string, response: DAVResultResponse): Entry | undefined {
  const propstat = response.propstat;
  if (!propstat || !/^\S+\s+2\d\d\b/.test(propstat.status)) return undefined;
  const props = propstat.prop;
  const type = props.resourcetype;
  const collection = typeof type === "object" && "collection" in type;
  const time = Date.parse(text(props.getlastmodified) ?? "");
  const entry: Entry = { path, type: collection ? "dir" : "file" };
  if (!collection) {
    const size = Number(text(props.getcontentlength) ?? NaN);
    if (Number.isSafeInteger(size) && size >= 0) entry.size = size;
  }
  if (Number.isFinite(time)) entry.modTime = time;
  return entry;
}

/** The entries of a Multi-Status body, paths relative to the root whose names are `base`. */
export async function parseMultistatus(
  xml: string,
  base: readonly string[],
  context: ErrorContext,
): Promise<Entry[]> {
  let responses: DAVResultResponse[];
  try {
    responses = (await parseXML(xml)).multistatus.response;
  } catch (error) {
    throw new FerryError(
      "PROTOCOL",
      `${context.device}: ${context.operation} ${context.path}: not a WebDAV Multi-Status reply`,
      {
        cause: error,
        subject: context.path,
      },
    );
  }
  const entries: Entry[] = [];
  for (const response of responses) {
    const path = pathOfHref(text(response.href) ?? "", base);
    const entry = path === undefined ? undefined : toEntry(path, response);
    if (entry) entries.push(entry);
  }
  return entries;
}
