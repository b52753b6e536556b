/**
 * Which packages scripts/vendor.ts may fold into bundles: never one that something outside the
 * fold imports too (two copies of one module), never one with native code; and the real install's
 * fold keeps every package the CLI's start-up was measured with. Then what bin/ferry.js does with
 * the bundles (src/cli/vendored.ts), in a child process over a made-up install.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { foldable, SEEDS, type LockFile } from "../scripts/vendor.ts";
import { MANIFEST, VENDOR_DIR, type VendorManifest } from "../src/cli/vendored.ts";

const lock = (packages: LockFile["packages"]): LockFile => ({ packages: { "": {}, ...packages } });

describe("pre-bundled dependencies: what may be folded", () => {
  it("a seed and what only it uses are folded; what others use too stays out", () => {
    const { keys, dropped } = foldable(
      lock({
        "": { dependencies: { seed: "1", web: "1" } },
        "node_modules/seed": { dependencies: { own: "1", shared: "1" } },
        "node_modules/own": {},
        "node_modules/shared": {},
        "node_modules/web": { dependencies: { shared: "1" } },
      }),
      ["seed"],
    );
    assert.deepEqual([...keys].sort(), ["node_modules/own", "node_modules/seed"]);
    assert.deepEqual(dropped, []);
  });

  it("a seed another package imports is folded only with that package", () => {
    const packages = {
      "": { dependencies: { zod: "4", provider: "7" } },
      "node_modules/zod": {},
      "node_modules/provider": { peerDependencies: { zod: "4" } },
    };
    assert.deepEqual(foldable(lock(packages), ["zod"]).dropped, [
      "zod: provider imports it and is not folded",
    ]);
    assert.deepEqual([...foldable(lock(packages), ["zod", "provider"]).keys].sort(), [
      "node_modules/provider",
      "node_modules/zod",
    ]);
  });

  it("what Ferry imports itself is folded only as a seed", () => {
    const { keys } = foldable(
      lock({
        "": { dependencies: { seed: "1", helper: "1" } },
        "node_modules/seed": { dependencies: { helper: "1" } },
        "node_modules/helper": {},
      }),
      ["seed"],
    );
    assert.deepEqual([...keys], ["node_modules/seed"]);
  });

  it("native code stays out: what imports it keeps the import", () => {
    const { keys, dropped } = foldable(
      lock({
        "": { dependencies: { seed: "1", db: "1" } },
        "node_modules/seed": { dependencies: { addon: "1" } },
        "node_modules/addon": { hasInstallScript: true },
        "node_modules/db": { hasInstallScript: true },
      }),
      ["seed", "db"],
    );
    assert.deepEqual([...keys], ["node_modules/seed"]);
    assert.deepEqual(dropped, ["db: it has native code"]);
  });

  it("a nested copy is found where Node finds it, and dev packages do not count", () => {
    const { keys } = foldable(
      lock({
        "": { dependencies: { seed: "1" } },
        "node_modules/seed": { dependencies: { lib: "2" } },
        "node_modules/seed/node_modules/lib": {},
        // The top copy is another version, used by a dev tool only.
        "node_modules/lib": { dev: true },
        "node_modules/linter": { dev: true, dependencies: { lib: "1" } },
      }),
      ["seed"],
    );
    assert.deepEqual([...keys].sort(), ["node_modules/seed", "node_modules/seed/node_modules/lib"]);
  });

  it("Ferry's own install folds every seed", async () => {
    const real = JSON.parse(
      await readFile(new URL("../package-lock.json", import.meta.url), "utf8"),
    ) as LockFile;
    const { keys, dropped } = foldable(real, SEEDS);
    assert.deepEqual(dropped, []);
    for (const seed of SEEDS) assert.ok(keys.has(`node_modules/${seed}`), seed);
    assert.ok(!keys.has("node_modules/better-sqlite3"));
  });
});

describe("pre-bundled dependencies: how ferry uses them", () => {
  const run = promisify(execFile);
  const vendored = new URL("../src/cli/vendored.ts", import.meta.url).href;
  let root: string;
  const installed = () => join(root, "node_modules/.package-lock.json");
  /** What the child imports of "lib" and "lib/extra", after useVendored of the made-up install. */
  const importsInChild = async () => {
    const script = join(root, "probe.mjs");
    await writeFile(
      script,
      [
        `import { useVendored } from ${JSON.stringify(vendored)};`,
        `const used = useVendored(new URL("./", import.meta.url));`,
        `const lib = await import("lib");`,
        `const extra = await import("lib/extra").then((m) => m.from, (e) => e.message);`,
        `console.log(JSON.stringify({ used, lib: lib.from, extra }));`,
      ].join("\n"),
    );
    const { stdout } = await run(process.execPath, [script]);
    return JSON.parse(stdout) as { used: boolean; lib: string; extra: string };
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ferry-vendored-"));
    const lib = join(root, "node_modules/lib");
    await mkdir(lib, { recursive: true });
    await writeFile(
      join(lib, "package.json"),
      JSON.stringify({
        name: "lib",
        type: "module",
        exports: { ".": "./index.js", "./extra": "./extra.js" },
      }),
    );
    await writeFile(join(lib, "index.js"), `export const from = "node_modules";\n`);
    await writeFile(join(lib, "extra.js"), `export const from = "node_modules";\n`);
    await writeFile(installed(), "{}");
    await mkdir(join(root, VENDOR_DIR, "b-1"), { recursive: true });
    await writeFile(join(root, VENDOR_DIR, "b-1/lib.mjs"), `export const from = "bundle";\n`);
    const { size, mtimeMs } = await stat(installed());
    const manifest: VendorManifest = {
      installed: { size, mtimeMs },
      packages: ["lib"],
      entries: { lib: "b-1/lib.mjs" },
    };
    await writeFile(join(root, VENDOR_DIR, MANIFEST), JSON.stringify(manifest));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("a bundled specifier loads its bundle; another of the same package fails, naming the fix", async () => {
    const seen = await importsInChild();
    assert.deepEqual([seen.used, seen.lib], [true, "bundle"]);
    assert.match(
      seen.extra,
      /lib\/extra is not in the pre-bundled dependencies: run `node scripts\/vendor\.ts`/,
    );
  });

  it("bundles made from another install are not used", async () => {
    // npm rewrote its record of the install: other packages may be there now.
    await utimes(installed(), new Date(), new Date(Date.now() + 5_000));
    assert.deepEqual(await importsInChild(), { used: false, lib: "node_modules", extra: "node_modules" });
  });
});
