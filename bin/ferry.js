#!/usr/bin/env node
// Entry point for an installed `ferry`: Node >= 22.18 runs the TypeScript sources directly.
await import("../src/cli/main.ts");
