/** Shared by the config tests: small fake device kinds and the example from the documentation. */
import assert from "node:assert/strict";
import { z } from "zod";
import { secretString } from "../core/secret.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { parseConfig } from "./load.ts";
import type { DeviceKind, FerryConfig, LoadOptions } from "./types.ts";

/** A printer-like kind whose options are a plain zod object. */
export const printerKind: DeviceKind = {
  kind: "prusalink",
  optionsSchema: z.object({
    url: z.url(),
    username: z.string().default("maker"),
    password: secretString(),
  }),
  printer: true,
};

/** A kind whose options schema is not a ZodObject (a transform), so it cannot be extended. */
export const folderKind: DeviceKind = {
  kind: "folder",
  optionsSchema: z
    .object({ path: z.string().min(1) })
    .strict()
    .transform((options) => ({ ...options, resolved: true })),
};

/** A ZodObject with a refinement (plain `.extend` refuses it), not strict of its own. */
export const ftpKind: DeviceKind = {
  kind: "ftp",
  optionsSchema: z
    .object({ host: z.string(), port: z.number().int().default(21), password: secretString().optional() })
    .refine((options) => options.host !== "forbidden", { message: "that host is forbidden", path: ["host"] }),
};

/** A write-only kind (a web form): files go in, nothing can be listed, read or deleted. */
export const formKind: DeviceKind = {
  kind: "form",
  optionsSchema: z.strictObject({ url: z.url() }),
  storage: { read: false, write: true, list: "none" },
};

export const KINDS: readonly DeviceKind[] = [printerKind, folderKind, ftpKind, formKind];

export const PASSWORD = "s3cret-Pa55word";

export const EXAMPLE = `devices:
  mk4-a: { type: prusalink, url: "http://127.0.0.1:18100", username: maker, password: "\${PRUSA_PASSWORD}" }
  mk4-b: { type: prusalink, url: "http://127.0.0.1:18101", username: maker, password: "\${PRUSA_PASSWORD}" }
groups:
  farm: [mk4-a, mk4-b]
syncs:
  gcode:
    source: ./master          # a local folder, or DEVICE:PATH
    targets: [farm]           # devices or groups, each optionally DEVICE:PATH (default: the printer's main storage root)
    mode: mirror              # mirror | copy (move comes later)
    include: ["**/*.gcode", "**/*.bgcode"]
    when: idle                # only touch printers that are idle
`;

export type TestOptions = Partial<LoadOptions> & { dotenv?: Record<string, string> };

export function parse(text: string, options: TestOptions = {}, file = "/farm/ferry.yaml"): FerryConfig {
  return parseConfig(text, file, { deviceKinds: KINDS, env: { PRUSA_PASSWORD: PASSWORD }, ...options });
}

/** The ConfigError `run` throws. */
export function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

export async function configErrorAsync(run: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

/** Problems as "line:column path: message" strings, easy to compare. */
export function brief(problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => `${p.line ?? "-"}:${p.column ?? "-"} ${p.path}: ${p.message}`);
}

/** The problem at `path`, failing when there is none. */
export function problemAt(problems: readonly ConfigProblem[], path: string): ConfigProblem {
  const found = problems.find((p) => p.path === path);
  assert.ok(found, `no problem at ${path}; problems:\n${brief(problems).join("\n")}`);
  return found;
}
