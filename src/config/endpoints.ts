/**
 * Endpoint syntax of `source:` and `targets:`:
 * - a local folder: starts with "./", "../", "/" or "~/" (or is ".", ".." or "~");
 * - `NAME` or `NAME:PATH`, NAME a device or a group (a group stands for each of its devices, all
 *   with the same PATH); PATH is relative to the device's root and may not climb out of it.
 */
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { isFerryError } from "../core/errors.ts";
import { isWithin, normalizePath } from "../core/paths.ts";
import type { Endpoint } from "./types.ts";

export interface EndpointContext {
  baseDir: string;
  homeDir: string;
  devices: ReadonlySet<string>;
  groups: ReadonlyMap<string, readonly string[]>;
}

export type EndpointResult =
  { ok: true; endpoints: Endpoint[]; group?: string } | { ok: false; message: string };

export function isLocalSyntax(text: string): boolean {
  return (
    text === "." ||
    text === ".." ||
    text === "~" ||
    text.startsWith("./") ||
    text.startsWith("../") ||
    text.startsWith("/") ||
    text.startsWith("~/")
  );
}

/** A local path as written in the config → absolute: "~" is the home folder, relative is from baseDir. */
export function resolveLocalPath(text: string, baseDir: string, homeDir: string): string {
  if (text === "~") return homeDir;
  if (text.startsWith("~/")) return join(homeDir, text.slice(2));
  return resolve(baseDir, text);
}

export function parseEndpoint(text: string, context: EndpointContext): EndpointResult {
  if (isLocalSyntax(text)) {
    const path = resolveLocalPath(text, context.baseDir, context.homeDir);
    return { ok: true, endpoints: [{ type: "local", path, label: text }] };
  }
  const colon = text.indexOf(":");
  const name = colon < 0 ? text : text.slice(0, colon);
  let path: string;
  try {
    path = normalizePath(colon < 0 ? "" : text.slice(colon + 1));
  } catch (error) {
    if (!isFerryError(error)) throw error;
    return { ok: false, message: `path of "${text}" climbs out of the device's root` };
  }
  const endpoint = (device: string): Endpoint => ({
    type: "device",
    device,
    path,
    label: path === "" ? device : `${device}:${path}`,
  });
  if (context.devices.has(name)) return { ok: true, endpoints: [endpoint(name)] };
  const members = context.groups.get(name);
  if (members !== undefined) return { ok: true, endpoints: members.map(endpoint), group: name };
  const hint =
    colon < 0 && !text.includes("/") ? "" : ' (a local folder starts with "./", "../", "/" or "~/")';
  return { ok: false, message: `unknown device or group "${name}"${hint}` };
}

/** Same device (or both local) and one folder lies within the other. */
export function overlaps(a: Endpoint, b: Endpoint): boolean {
  if (a.type === "device" && b.type === "device") {
    return a.device === b.device && (isWithin(a.path, b.path) || isWithin(b.path, a.path));
  }
  if (a.type === "local" && b.type === "local") {
    const within = (inner: string, outer: string) => {
      const rel = relative(outer, inner);
      return rel === "" || (rel.split(sep)[0] !== ".." && !isAbsolute(rel));
    };
    return within(a.path, b.path) || within(b.path, a.path);
  }
  return false;
}

export function endpointKey(endpoint: Endpoint): string {
  return endpoint.type === "local" ? `local:${endpoint.path}` : `device:${endpoint.device}:${endpoint.path}`;
}
