// @ts-check
import { readdirSync } from "node:fs";
import { join } from "node:path";
import js from "@eslint/js";
import { createNodeResolver, importX } from "eslint-plugin-import-x";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

const root = import.meta.dirname;

/**
 * DESIGN.md §2 and docs/adr/0014: dependencies point one way. Each layer may import only the
 * layers before it (and itself); folders of one layer do not import each other.
 */
const LAYERS = [
  ["core"],
  ["config", "store", "storage", "printers"],
  ["tasks", "devices", "auth"],
  ["sync", "farm", "opcua", "notify"],
  ["app.ts"],
  ["server", "cli"],
];
/** Imports across one layer that the design itself calls for (paths relative to src/). */
const ALSO_ALLOWED = {
  // A printer's files are a StorageAdapter (DESIGN.md §3, PrinterDriver.storage()).
  printers: ["storage/adapter.ts"],
  // Simulators stand in for real devices in `ferry demo` and `ferry sim`.
  "app.ts": ["sim"],
  server: ["sim"],
  // `ferry serve` starts the HTTP server over the App (the server never imports the CLI).
  cli: ["sim", "server/server.ts"],
};
/** Vendor SDKs, each only inside its adapter's folder. */
const VENDOR_SDKS = {
  "storage/ftp": "basic-ftp",
  "storage/s3": "@aws-sdk",
  "storage/sftp": "ssh2",
  "storage/webdav": "webdav",
};
/** Tests and their helpers are leaves nobody imports: they may reach any layer, simulators and test/. */
const TEST_FILES = ["**/*.test.ts", "**/test-support.ts", "**/test-fixtures.ts"];

const subfolders = (dir) =>
  readdirSync(join(root, "src", dir), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
const sharedFiles = (dir) =>
  readdirSync(join(root, "src", dir)).filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"));

function layerZones() {
  return LAYERS.flatMap((layer, index) =>
    layer.map((folder) => {
      const allowed = [...LAYERS.slice(0, index).flat(), ...(ALSO_ALLOWED[folder] ?? [])];
      return {
        target: `src/${folder}`,
        from: "src",
        except: [folder, ...allowed].map((path) => `./${path}`),
        message: `src/${folder} may import only ${["itself", ...allowed].join(", ")} (DESIGN.md §2, docs/adr/0014).`,
      };
    }),
  );
}

// A folder in no layer would go unchecked: say so rather than let it.
const placed = new Set([...LAYERS.flat(), "sim"]);
for (const entry of readdirSync(join(root, "src"), { withFileTypes: true })) {
  const code = entry.isDirectory() || entry.name.endsWith(".ts");
  if (code && !placed.has(entry.name)) {
    throw new Error(`eslint.config.js: src/${entry.name} is in no layer; add it to LAYERS (docs/adr/0014)`);
  }
}

/**
 * One adapter (driver) folder does not import another: what they share lives in the parent's own
 * files (adapter.ts, errors.ts, ...) or in storage/wrappers. The parent's files do not import the
 * adapters either, except the one list of them (all.ts).
 */
function adapterZones(parent, allowed) {
  const folders = subfolders(parent);
  const perFolder = folders.map((folder) => ({
    target: `src/${parent}/${folder}`,
    from: `src/${parent}/*/**`,
    except: [folder, ...(allowed[folder] ?? [])].map((p) => join(root, "src", parent, p, "**")),
    message: `an adapter folder of src/${parent} does not import another adapter's folder (docs/adr/0014).`,
  }));
  const shared = sharedFiles(parent).filter((name) => name !== "all.ts");
  const fromShared =
    shared.length === 0
      ? []
      : [
          {
            target: shared.map((name) => `src/${parent}/${name}`),
            from: folders.map((folder) => `src/${parent}/${folder}`),
            message: `only src/${parent}/all.ts imports the adapter folders (docs/adr/0014).`,
          },
        ];
  return [...perFolder, ...fromShared];
}

const restrictedPaths = [
  ...layerZones(),
  // A simulator is a faithful stand-in for a device: it shares nothing with Ferry but core.
  { target: "src/sim", from: "src", except: ["./core", "./sim"], message: "src/sim may import only core." },
  ...adapterZones("storage", {
    // A removable volume is a local folder on a mount that comes and goes.
    removable: ["local"],
  }),
  ...adapterZones("printers", {}),
  { target: "src", from: "test", message: "product code does not import test helpers." },
  {
    target: "src",
    from: TEST_FILES.map((glob) => `src/${glob}`),
    message: "product code does not import test helpers.",
  },
];

/** `no-restricted-imports` that keeps every vendor SDK but `own` out. */
function vendorSdkRule(own) {
  const others = Object.entries(VENDOR_SDKS).filter(([folder]) => folder !== own);
  return [
    "error",
    {
      patterns: others.map(([folder, sdk]) => ({
        regex: `^${sdk}(/|$)`,
        message: `${sdk} is used only inside src/${folder} (DESIGN.md §2).`,
      })),
    },
  ];
}

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      ".cache/**",
      "ferry-data/**",
      "ferry-demo/**",
      "dist/**",
      "web/dist/**",
      "web/dist.*",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe/it/test return promises the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            {
              from: "package",
              package: "node:test",
              name: ["describe", "it", "test", "suite", "before", "after", "beforeEach", "afterEach"],
            },
          ],
        },
      ],
      // Stylistic: `() => set.delete(x)` style callbacks read fine.
      "@typescript-eslint/no-confusing-void-expression": "off",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  { files: ["**/*.js"], ...tseslint.configs.disableTypeChecked },
  {
    plugins: { "import-x": importX },
    settings: {
      "import-x/resolver-next": [createNodeResolver()],
      // Without these import-x does not read .ts files and finds no cycle through them.
      "import-x/extensions": [".ts", ".tsx", ".js"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts", ".tsx"] },
    },
    rules: {
      // Only runtime cycles: a type-only import costs nothing at load time.
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: TEST_FILES,
    rules: { "import-x/no-restricted-paths": ["error", { basePath: root, zones: restrictedPaths }] },
  },
  { files: ["src/**/*.ts"], rules: { "no-restricted-imports": vendorSdkRule(undefined) } },
  // The dashboard (web/, its own tsconfig for the browser): React's rules of hooks; it reaches the
  // server's code only for types (its event payloads), which the build erases.
  {
    files: ["web/**/*.{ts,tsx}"],
    ...reactHooks.configs.flat["recommended-latest"],
  },
  {
    files: ["web/src/**/*.{ts,tsx}"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+src/",
              allowTypeImports: true,
              message: "the dashboard imports the server's types only",
            },
          ],
        },
      ],
    },
  },
  ...Object.keys(VENDOR_SDKS).map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: { "no-restricted-imports": vendorSdkRule(folder) },
  })),
);
