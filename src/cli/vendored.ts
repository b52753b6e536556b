/**
 * Points `ferry`'s imports of pre-bundled dependencies at their bundles (scripts/vendor.ts), when
 * the bundles were made from the install that is there now; otherwise changes nothing, and the
 * imports load node_modules as usual. Runs before the first import of Ferry's code.
 */
import { readFileSync, statSync } from "node:fs";
import { registerHooks } from "node:module";

/** Where scripts/vendor.ts leaves the bundles and their manifest, below Ferry's folder. */
export const VENDOR_DIR = ".cache/vendor/";
export const MANIFEST = "manifest.json";

/** What scripts/vendor.ts leaves in the manifest. */
export interface VendorManifest {
  /** Size and time of node_modules/.package-lock.json, which npm rewrites on every install. */
  installed: { size: number; mtimeMs: number };
  /** The packages Ferry imports that are bundled. */
  packages: string[];
  /** Bare specifier → its bundle's file, relative to the manifest's folder. */
  entries: Record<string, string>;
}

/** The package a bare specifier names: `@aws-sdk/client-s3/x` → `@aws-sdk/client-s3`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

/** The manifest of the bundles below `root` (Ferry's folder, ending in /), or undefined when none was built. */
export function readManifest(root: URL): VendorManifest | undefined {
  try {
    return JSON.parse(readFileSync(new URL(VENDOR_DIR + MANIFEST, root), "utf8")) as VendorManifest;
  } catch {
    return undefined;
  }
}

/** Each bundled specifier's file URL. */
export function bundleUrls(root: URL, manifest: VendorManifest): Map<string, string> {
  const base = new URL(VENDOR_DIR, root);
  return new Map(
    Object.entries(manifest.entries).map(([specifier, file]) => [specifier, new URL(file, base).href]),
  );
}

/** Whether the bundles below `root` (Ferry's folder, ending in /) are used from now on. */
export function useVendored(root: URL): boolean {
  const manifest = readManifest(root);
  if (manifest === undefined) return false;
  try {
    const installed = statSync(new URL("node_modules/.package-lock.json", root));
    // npm rewrites this file on every install: another size or time means other packages.
    if (installed.size !== manifest.installed.size || installed.mtimeMs !== manifest.installed.mtimeMs) {
      return false;
    }
  } catch {
    return false;
  }
  const urls = bundleUrls(root, manifest);
  const bundled = new Set(manifest.packages);
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const url = urls.get(specifier);
      if (url !== undefined) return { url, format: "module", shortCircuit: true };
      // Loading the package's own files too would make two copies of it.
      if (bundled.has(packageOf(specifier))) {
        throw new Error(
          `${specifier} is not in the pre-bundled dependencies: run \`node scripts/vendor.ts\` in ${root.pathname}`,
        );
      }
      return nextResolve(specifier, context);
    },
  });
  return true;
}
