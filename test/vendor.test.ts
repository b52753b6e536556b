/**
 * Which packages scripts/vendor.ts may fold into bundles: never one that something outside the
 * fold imports too (two copies of one module), never one with native code; and the real install's
 * fold keeps every package the CLI's start-up was measured with.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { foldable, SEEDS, type LockFile } from "../scripts/vendor.ts";

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
