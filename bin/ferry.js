#!/usr/bin/env -S node --max-semi-space-size=2
// Entry point of `ferry`. Node >= 22.18 runs the TypeScript sources directly; the compile cache
// keeps the stripped and compiled code between runs, so a cron job starts fast and small.
// A small young generation (2 MB semi-spaces) makes V8 collect spent transfer buffers early: a
// hundred parallel uploads then stay well under 200 MB (docs/adr/0006-memory.md). Runs that do
// not come through this shebang pass the same flag (package.json scripts, bench/).
import module from "node:module";

module.enableCompileCache?.();
await import("../src/cli/main.ts");
