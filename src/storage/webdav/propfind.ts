/**
 * PROPFIND: the query Ferry sends and the 207 Multi-Status it gets back. fast-xml-parser reads the
 * XML (entities, namespace prefixes, which differ between servers: D:, d:, lp1:, none); what each
 * response means for Ferry (path below the root, type, size, time) is decided here.
 */
import { XMLParser } from "fast-xml-parser";
import { SyntaxValidator } from "fast-xml-validator";
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

/** A Multi-Status as parsed: elements by local name; `response` and `propstat` always lists. */
interface Response {
  href?: unknown;
  propstat?: { status?: unknown; prop?: Record<string, unknown> }[];
}

const validator = new SyntaxValidator();
const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  // Values stay text: sizes are read here, and a name like "0123" is no number.
  parseTagValue: false,
  isArray: (name) => name === "response" || name === "propstat",
});

function text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (value && typeof value === "object" && "#text" in value) return text(value["#text"]);
  return undefined;
}

/**
 * The properties a server found for one response. RFC 4918 gives one propstat per status: those it
 * has (200) and those it has not (404, as a folder's getcontentlength), in any order.
 */
function foundProps(response: Response): Record<string, unknown> | undefined {
  let found: Record<string, unknown> | undefined;
  for (const propstat of response.propstat ?? []) {
    if (!/^\S+\s+2\d\d\b/.test(text(propstat.status) ?? "")) continue;
    found = { ...found, ...(typeof propstat.prop === "object" ? propstat.prop : {}) };
  }
  return found;
}

function toEntry(path: string, response: Response): Entry | undefined {
  const props = foundProps(response);
  if (!props) return undefined;
  const type = props.resourcetype;
  const collection = typeof type === "object" && type !== null && "collection" in type;
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
export function parseMultistatus(xml: string, base: readonly string[], context: ErrorContext): Entry[] {
  const responses = multistatusResponses(xml);
  if (!responses) {
    throw new FerryError(
      "PROTOCOL",
      `${context.device}: ${context.operation} ${context.path}: not a WebDAV Multi-Status reply`,
      { subject: context.path },
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

/** The responses of a well-formed Multi-Status, or undefined for anything else (a cut body, HTML). */
function multistatusResponses(xml: string): Response[] | undefined {
  // Checked whole first: the parser is lenient, and a reply cut short must not read as a shorter listing.
  try {
    validator.validate(xml);
  } catch {
    return undefined;
  }
  const root: unknown = parser.parse(xml);
  const multistatus =
    typeof root === "object" && root !== null && "multistatus" in root ? root.multistatus : undefined;
  if (multistatus === "") return [];
  if (typeof multistatus !== "object" || multistatus === null) return undefined;
  const responses = "response" in multistatus ? multistatus.response : [];
  return Array.isArray(responses) ? (responses as Response[]) : undefined;
}
