/**
 * Preloaded into a child process (`node --import <this file> ...`): at exit it writes the npm
 * packages the process loaded, one per line, to the file named by FERRY_LOADED_PACKAGES_FILE. A
 * package bin/ferry.js loads pre-bundled (scripts/vendor.ts) counts when its bundle loads.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { packageOf, type VendorManifest } from "../../src/cli/vendored.ts";

const out = process.env.FERRY_LOADED_PACKAGES_FILE;
if (out !== undefined && out !== "") {
  const vendor = new URL("../../.cache/vendor/", import.meta.url);
  const bundled = new Map<string, string>();
  try {
    const manifest = JSON.parse(readFileSync(new URL("manifest.json", vendor), "utf8")) as VendorManifest;
    for (const [specifier, file] of Object.entries(manifest.entries)) {
      bundled.set(new URL(file, vendor).href, packageOf(specifier));
    }
  } catch {
    // Nothing pre-bundled.
  }
  const packages = new Set<string>();
  registerHooks({
    load(url, context, next) {
      const inside = url.split("/node_modules/").at(-1);
      const name =
        bundled.get(url) ?? (inside !== undefined && inside !== url ? packageOf(inside) : undefined);
      if (name !== undefined) packages.add(name);
      return next(url, context);
    },
  });
  process.on("exit", () => writeFileSync(out, [...packages].sort().join("\n")));
}
