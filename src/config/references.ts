/**
 * Checks that need the whole file: names, group members, and the endpoints of every sync. They run on
 * the plain data even where the schema found problems elsewhere, so that one run reports everything.
 */
import type { ConfigProblem } from "./errors.ts";
import { endpointKey, overlaps, parseEndpoint, type EndpointContext } from "./endpoints.ts";
import { NAME_PATTERN } from "./schema.ts";
import type { ConfigSource, FieldPath } from "./source.ts";
import type { DeviceKind, Endpoint } from "./types.ts";

export interface References {
  groups: Map<string, string[]>;
  endpoints: Map<string, { source: Endpoint; targets: Endpoint[] }>;
}

export interface ReferenceContext {
  source: ConfigSource;
  baseDir: string;
  homeDir: string;
  problems: ConfigProblem[];
  /** Fields already reported (e.g. an unset variable), not to be checked again. */
  skip: (path: FieldPath) => boolean;
  /** The device kinds, for what their files allow (a write-only form cannot be a source). */
  kinds: readonly DeviceKind[];
}

type Dict = Record<string, unknown>;

const isDict = (value: unknown): value is Dict =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const dictAt = (data: Dict, key: string): Dict => {
  const value = data[key];
  return isDict(value) ? value : {};
};

/** List items with their field paths; a single string stands for a list of one. */
function items(value: unknown, path: FieldPath): [string, FieldPath][] {
  if (typeof value === "string") return [[value, path]];
  if (!Array.isArray(value)) return [];
  const out: [string, FieldPath][] = [];
  value.forEach((item, i) => {
    if (typeof item === "string" && item !== "") out.push([item, [...path, i]]);
  });
  return out;
}

function checkName(kind: string, name: string, path: FieldPath, context: ReferenceContext): void {
  if (!NAME_PATTERN.test(name)) {
    const message = `${kind} name "${name}" is not valid: use letters, digits, ".", "_" and "-", starting with a letter or digit`;
    context.problems.push(context.source.problem(path, message, { atKey: true }));
  }
}

export function checkReferences(data: unknown, context: ReferenceContext): References {
  const { source, problems } = context;
  const top = isDict(data) ? data : {};
  const deviceNames = new Set(Object.keys(dictAt(top, "devices")));
  for (const name of deviceNames) checkName("device", name, ["devices", name], context);

  const rawGroups = dictAt(top, "groups");
  const groups = new Map<string, string[]>();
  for (const [name, members] of Object.entries(rawGroups)) {
    const path = ["groups", name];
    checkName("group", name, path, context);
    const clash = deviceNames.has(name);
    if (clash) problems.push(source.problem(path, `"${name}" is both a device and a group`, { atKey: true }));
    // A set, not a list search: a farm's group may name thousands of printers.
    const devices = new Set<string>();
    for (const [member, memberPath] of items(members, path)) {
      if (context.skip(memberPath)) continue;
      if (deviceNames.has(member)) {
        devices.add(member);
      } else if (Object.hasOwn(rawGroups, member)) {
        problems.push(source.problem(memberPath, `"${member}" is a group; a group lists devices only`));
      } else {
        problems.push(source.problem(memberPath, `unknown device "${member}"`));
      }
    }
    // Where a name is both, endpoints take the device; the clash is already a problem.
    if (!clash) groups.set(name, [...devices]);
  }

  const endpointContext: EndpointContext = {
    baseDir: context.baseDir,
    homeDir: context.homeDir,
    devices: deviceNames,
    groups,
  };
  const devices = dictAt(top, "devices");
  /** What the device's kind allows, when the kind is known. */
  const allows = (endpoint: Endpoint) => {
    if (endpoint.type !== "device") return undefined;
    const device = devices[endpoint.device];
    const type = isDict(device) ? device.type : undefined;
    return context.kinds.find((k) => k.kind === type)?.storage;
  };
  const endpoints = new Map<string, { source: Endpoint; targets: Endpoint[] }>();
  for (const [name, sync] of Object.entries(dictAt(top, "syncs"))) {
    checkName("sync", name, ["syncs", name], context);
    if (!isDict(sync)) continue;
    const from = syncSource(sync.source, ["syncs", name, "source"], endpointContext, context);
    const sourceCaps = from && allows(from);
    if (sourceCaps && (!sourceCaps.read || sourceCaps.list === "none")) {
      const message = `"${from.label}" only takes files in; it cannot be a source`;
      problems.push(source.problem(["syncs", name, "source"], message));
    }
    const mirror = sync.mode === "mirror";
    const targets: Endpoint[] = [];
    // Targets that could overlap a new one: only those on the same device, or local folders. Checking
    // every pair made a group of 200,000 printers take hours.
    const sameSide = new Map<string, Endpoint[]>();
    const sideOf = (endpoint: Endpoint) => (endpoint.type === "local" ? "" : `device:${endpoint.device}`);
    const seen = new Set<string>();
    for (const [text, path] of items(sync.targets, ["syncs", name, "targets"])) {
      if (context.skip(path)) continue;
      const result = parseEndpoint(text, endpointContext);
      if (!result.ok) {
        problems.push(source.problem(path, result.message));
        continue;
      }
      for (const target of result.endpoints) {
        if (from !== undefined && overlaps(target, from)) {
          const message = `target "${target.label}" overlaps the source "${from.label}"; a sync cannot copy a folder into itself`;
          problems.push(source.problem(path, message));
          continue;
        }
        const key = endpointKey(target);
        if (seen.has(key)) continue;
        seen.add(key);
        // One target inside another: a mirror onto the outer one would delete what the inner gets.
        const side = sameSide.get(sideOf(target)) ?? [];
        const nested = side.find((other) => overlaps(target, other));
        if (nested !== undefined) {
          const message = `target "${target.label}" overlaps the target "${nested.label}"; one folder would hold the other's copy`;
          problems.push(source.problem(path, message));
          continue;
        }
        const caps = allows(target);
        if (caps && !caps.write) {
          problems.push(source.problem(path, `"${target.label}" cannot take files; it cannot be a target`));
          continue;
        }
        if (caps?.list === "none" && mirror) {
          const message = `"${target.label}" only takes files in and cannot delete them, so it cannot mirror; use mode copy or move`;
          problems.push(source.problem(path, message));
          continue;
        }
        targets.push(target);
        side.push(target);
        sameSide.set(sideOf(target), side);
      }
    }
    if (from !== undefined) endpoints.set(name, { source: from, targets });
  }
  return { groups, endpoints };
}

function syncSource(
  value: unknown,
  path: FieldPath,
  endpointContext: EndpointContext,
  context: ReferenceContext,
): Endpoint | undefined {
  if (typeof value !== "string" || value === "" || context.skip(path)) return undefined;
  const result = parseEndpoint(value, endpointContext);
  if (!result.ok) {
    context.problems.push(context.source.problem(path, result.message));
    return undefined;
  }
  if (result.group !== undefined) {
    const message = `"${result.group}" is a group; the source must be one device or one folder`;
    context.problems.push(context.source.problem(path, message));
    return undefined;
  }
  return result.endpoints[0];
}
