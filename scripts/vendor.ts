/**
 * Pre-bundles the dependencies whose hundreds of small modules make `ferry` slow to start (kysely
 * alone is 257 files), as Vite does for a browser: each becomes a few files in .cache/vendor, and
 * bin/ferry.js points their imports there (src/cli/vendored.ts). Ferry's own sources still run as
 * they are; only node_modules is folded. docs/adr/0023-pre-bundled-dependencies.md says why.
 *
 *   node scripts/vendor.ts   (scripts/node.sh runs it when the install or the sources changed)
 *
 * A package is folded only when everything that imports it is Ferry or is folded too, so there is
 * never a second copy of a module that something else shares (a zod schema handed to fastify's zod
 * must be the same zod). What a folded package imports from outside stays an import, and must be
 * the copy node_modules gives at its top, which the bundle's folder resolves to as well. Packages
 * with native code stay out. When a rule cannot hold, the build says so and leaves nothing: ferry
 * then loads node_modules as usual.
 */
import { randomBytes } from "node:crypto";
import { findPackageJSON, isBuiltin } from "node:module";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { MANIFEST, packageOf, VENDOR_DIR, type VendorManifest } from "../src/cli/vendored.ts";

/** The packages folded, by measure: each took 15-100 ms to load as loose modules. */
export const SEEDS = [
  "kysely",
  "zod",
  // It takes Ferry's zod schemas: zod is folded only with it.
  "fastify-type-provider-zod",
  "fast-xml-parser",
  "fast-xml-validator",
  "undici",
  "@aws-sdk/client-s3",
  "commander",
  "picomatch",
  "croner",
];

/** The part of package-lock.json read here. */
export interface LockFile {
  packages: Record<string, LockPackage>;
}
interface LockPackage {
  dev?: boolean;
  hasInstallScript?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** The lock key (`node_modules/a/node_modules/b`) Node finds `name` at, from the package at `from` ("" is Ferry). */
function resolveKey(lock: LockFile, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const key = dir === "" ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
    if (lock.packages[key] !== undefined) return key;
    if (dir === "") return undefined;
    const up = dir.lastIndexOf("/node_modules/");
    dir = up < 0 ? "" : dir.slice(0, up);
  }
}

/**
 * The lock keys of the packages that may be folded: the seeds and what they use, less every
 * package something outside the fold imports (Ferry counts as inside for a seed only) and every
 * package with an install script (native code). `dropped` says which seeds fell out, and why.
 */
export function foldable(lock: LockFile, seeds: readonly string[]): { keys: Set<string>; dropped: string[] } {
  const dependents = new Map<string, Set<string>>();
  const uses = new Map<string, string[]>();
  for (const [key, pkg] of Object.entries(lock.packages)) {
    if (pkg.dev === true) continue;
    const names = Object.keys({
      ...pkg.dependencies,
      ...pkg.optionalDependencies,
      ...pkg.peerDependencies,
    });
    const resolved = names.flatMap((name) => resolveKey(lock, key, name) ?? []);
    uses.set(key, resolved);
    for (const dep of resolved) dependents.set(dep, (dependents.get(dep) ?? new Set()).add(key));
  }
  const seedKeys = new Set(seeds.map((s) => `node_modules/${s}`));
  const keys = new Set<string>();
  const visit = (key: string) => {
    if (keys.has(key) || lock.packages[key]?.dev === true) return;
    keys.add(key);
    for (const dep of uses.get(key) ?? []) visit(dep);
  };
  for (const key of seedKeys) if (lock.packages[key] !== undefined) visit(key);
  const why = new Map<string, string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const key of keys) {
      const outside = [...(dependents.get(key) ?? [])].find((d) =>
        d === "" ? !seedKeys.has(key) : !keys.has(d),
      );
      const reason =
        lock.packages[key]?.hasInstallScript === true
          ? "it has native code"
          : outside !== undefined
            ? `${outside === "" ? "Ferry" : outside.replace(/^.*node_modules\//, "")} imports it and is not folded`
            : undefined;
      if (reason !== undefined) {
        keys.delete(key);
        why.set(key, reason);
        changed = true;
      }
    }
  }
  const dropped = [...seedKeys]
    .filter((key) => !keys.has(key))
    .map((key) => `${key.slice("node_modules/".length)}: ${why.get(key) ?? "not installed"}`);
  return { keys, dropped };
}

async function sourceFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const name = entry.name;
    if (entry.isFile() && name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.startsWith("test-"))
      found.push(join(entry.parentPath, name));
  }
  return found;
}

/** Bare specifiers of folded packages that Ferry's sources import (statically or not). */
async function importedSpecifiers(root: string, folded: Set<string>): Promise<string[]> {
  const specifiers = new Set<string>();
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*)"([^".][^"]*)"/g;
  for (const file of await sourceFiles(join(root, "src"))) {
    for (const match of (await readFile(file, "utf8")).matchAll(pattern)) {
      const specifier = match[1] ?? "";
      if (folded.has(`node_modules/${packageOf(specifier)}`)) specifiers.add(specifier);
    }
  }
  return [...specifiers].sort();
}

/** Whether Node loads `url` as CommonJS. */
function isCommonJs(url: string): boolean {
  if (url.endsWith(".cjs")) return true;
  if (url.endsWith(".mjs")) return false;
  const manifest = findPackageJSON(url);
  return (
    manifest === undefined ||
    (JSON.parse(readFileSync(manifest, "utf8")) as { type?: string }).type !== "module"
  );
}

const ENTRY = "\0ferry-entry:";

/**
 * The module a bundle's entry is made from. A CommonJS package gets the named exports Node gives
 * it (found by importing it here): a bundled CommonJS module on its own exports only `default`.
 */
async function entrySource(specifier: string): Promise<string> {
  const from = JSON.stringify(specifier);
  const exported = Object.keys((await import(specifier)) as object);
  if (!isCommonJs(import.meta.resolve(specifier))) {
    return `export * from ${from};\n${exported.includes("default") ? `export { default } from ${from};\n` : ""}`;
  }
  const names = exported.filter((name) => name !== "default");
  return [
    `import * as ns from ${from};`,
    ...names.map(
      (name, i) => `const v${i} = ns[${JSON.stringify(name)}];\nexport { v${i} as ${JSON.stringify(name)} };`,
    ),
    "export default ns.default;",
    "",
  ].join("\n");
}

/** Builds the bundles and their manifest into `<root>/.cache/vendor`; says what it did on stderr. */
export async function buildVendor(root: string): Promise<VendorManifest> {
  const { build } = await import("rolldown");
  const lock = JSON.parse(await readFile(join(root, "package-lock.json"), "utf8")) as LockFile;
  const { keys, dropped } = foldable(lock, SEEDS);
  for (const line of dropped) process.stderr.write(`vendor: not folded: ${line}\n`);
  const specifiers = await importedSpecifiers(root, keys);
  const installed = await stat(join(root, "node_modules/.package-lock.json"));
  const vendor = join(root, VENDOR_DIR);
  const id = `b-${randomBytes(4).toString("hex")}`;
  const out = join(vendor, id);
  const packageKey = (file: string) => {
    const path = relative(root, file).split(sep).join("/");
    const at = path.lastIndexOf("node_modules/");
    if (at < 0) return undefined;
    const rest = path.slice(at + "node_modules/".length);
    return path.slice(0, at) + "node_modules/" + packageOf(rest);
  };
  const entryName = (specifier: string) => specifier.replace(/[@/]/g, "_");
  try {
    await build({
      input: Object.fromEntries(specifiers.map((s) => [entryName(s), ENTRY + s])),
      cwd: root,
      platform: "node",
      logLevel: "warn",
      plugins: [
        {
          name: "ferry-fold",
          // Folded packages go in; everything else stays an import, which must find the same copy.
          async resolveId(source, importer, options) {
            if (source.startsWith(ENTRY)) return source;
            // An entry's import resolves from Ferry's folder, as Ferry's own would.
            if (
              importer === undefined ||
              importer.startsWith(ENTRY) ||
              source.startsWith(".") ||
              source.startsWith("/")
            )
              return null;
            if (isBuiltin(source)) return { id: source, external: true };
            const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
            if (resolved === null) return null;
            const key = packageKey(resolved.id);
            if (key === undefined || keys.has(key)) return resolved;
            if (key !== `node_modules/${packageOf(source)}`) {
              throw new Error(
                `${source}, imported by ${relative(root, importer)}, is ${key}, not the copy at the top of node_modules`,
              );
            }
            return { id: source, external: true };
          },
          load(id) {
            return id.startsWith(ENTRY) ? entrySource(id.slice(ENTRY.length)) : null;
          },
        },
      ],
      output: { dir: out, format: "esm", entryFileNames: "[name].mjs", chunkFileNames: "[name]-[hash].mjs" },
    });
  } catch (error) {
    await rm(out, { recursive: true, force: true });
    throw error;
  }
  const manifest: VendorManifest = {
    installed: { size: installed.size, mtimeMs: installed.mtimeMs },
    packages: [...new Set(specifiers.map(packageOf))],
    entries: Object.fromEntries(specifiers.map((s) => [s, `${id}/${entryName(s)}.mjs`])),
  };
  // The manifest names complete bundles only: written aside, then renamed over the old one.
  const temp = join(vendor, `${MANIFEST}.${id}`);
  await writeFile(temp, JSON.stringify(manifest, null, 2) + "\n");
  await rename(temp, join(vendor, MANIFEST));
  // A run started before may still load a chunk of the previous build: that one stays.
  const builds = (await readdir(vendor, { withFileTypes: true })).filter((e) => e.isDirectory());
  const times = await Promise.all(
    builds.map(async (b) => [b.name, (await stat(join(vendor, b.name))).mtimeMs] as const),
  );
  const old = times
    .filter(([name]) => name !== id)
    .sort((a, b) => b[1] - a[1])
    .slice(1);
  for (const [name] of old) await rm(join(vendor, name), { recursive: true, force: true });
  process.stderr.write(
    `vendor: ${specifiers.length} entries, ${keys.size} packages folded into ${VENDOR_DIR}${id}\n`,
  );
  return manifest;
}

if (import.meta.filename === process.argv[1]) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  try {
    await mkdir(join(root, VENDOR_DIR), { recursive: true });
    await buildVendor(root);
  } catch (error) {
    // A folder ferry may not write to, a package the rules refuse: ferry runs on, only slower.
    process.stderr.write(
      `vendor: not built, ferry loads node_modules as it is: ${(error as Error).message}\n`,
    );
  }
}
