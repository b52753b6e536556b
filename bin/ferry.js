#!/usr/bin/env -S node --max-semi-space-size=2
// Entry point of `ferry`. Node >= 22.18 runs the TypeScript sources directly; the compile cache
// keeps the stripped and compiled code between runs, so a cron job starts fast and small.
// A small young generation (2 MB semi-spaces) makes V8 collect spent transfer buffers early: a
// hundred parallel uploads then stay well under 200 MB (docs/adr/0006-memory.md). Runs that do
// not come through this shebang pass the same flag (package.json scripts, bench/).
//
// An older Node cannot load the sources (ERR_UNKNOWN_FILE_EXTENSION ".ts"), so this file checks
// the version first and says what to do instead. It is plain JavaScript that old Nodes parse: no
// static import and no top-level await, which would fail before the check could run.
/* global process, URL -- this file runs in Node, and eslint's config gives .js files no Node globals */
const need = "22.18";
const [major, minor] = process.versions.node.split(".").map(Number);

if (major < 22 || (major === 22 && minor < 18)) {
  const wrapper = process.argv[1].replace(/ferry\.js$/, "ferry");
  process.stderr.write(
    [
      `ferry: needs Node >= ${need}; this is Node ${process.versions.node} (${process.execPath}).`,
      "Run it one of these ways, which use a Node 24 fetched into .cache/node when the machine's is older:",
      "  npm run ferry -- ARGS   (from the Ferry folder)",
      `  ${wrapper} ARGS   (from any folder, and from cron)`,
      `or install Node ${need} or newer (https://nodejs.org/en/download).`,
      "",
    ].join("\n"),
  );
  process.exitCode = 1;
} else {
  // A failure here is an unhandled rejection: printed with its stack, exit 1.
  // Pre-bundled dependencies (scripts/vendor.ts) load in a fraction of the time, when present.
  void import("node:module")
    .then(function (module) {
      if (module.default.enableCompileCache) module.default.enableCompileCache();
      return import("../src/cli/vendored.ts");
    })
    .then(function (vendored) {
      vendored.useVendored(new URL("..", import.meta.url));
      return import("../src/cli/main.ts");
    });
}
