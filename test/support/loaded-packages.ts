/**
 * Preloaded into a child process (`node --import <this file> ...`): at exit it writes the npm
 * packages the process loaded, one per line, to the file named by FERRY_LOADED_PACKAGES_FILE.
 */
import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";

const out = process.env.FERRY_LOADED_PACKAGES_FILE;
if (out !== undefined && out !== "") {
  const packages = new Set<string>();
  registerHooks({
    resolve(specifier, context, next) {
      const resolved = next(specifier, context);
      const inside = resolved.url.split("/node_modules/").at(-1);
      if (inside !== undefined && inside !== resolved.url) {
        const parts = inside.split("/");
        packages.add(parts[0]?.startsWith("@") === true ? `${parts[0]}/${parts[1]}` : (parts[0] ?? ""));
      }
      return resolved;
    },
  });
  process.on("exit", () => writeFileSync(out, [...packages].sort().join("\n")));
}
