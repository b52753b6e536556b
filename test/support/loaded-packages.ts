/**
 * Preloaded into a child process (`node --import <this file> ...`): at exit it writes the npm
 * packages the process loaded, one per line, to the file named by FERRY_LOADED_PACKAGES_FILE. A
 * package bin/ferry.js loads pre-bundled (scripts/vendor.ts) counts when its bundle loads.
 */
import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { bundleUrls, packageOf, readManifest } from "../../src/cli/vendored.ts";

const out = process.env.FERRY_LOADED_PACKAGES_FILE;
if (out !== undefined && out !== "") {
  const root = new URL("../../", import.meta.url);
  const manifest = readManifest(root);
  const bundled = new Map<string, string>();
  if (manifest !== undefined) {
    for (const [specifier, url] of bundleUrls(root, manifest)) {
      bundled.set(url, packageOf(specifier));
    }
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
