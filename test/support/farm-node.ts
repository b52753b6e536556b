/**
 * One farm node in a process of its own, for tests that kill it (-9) mid-print: the app as
 * `ferry serve` builds it, from a ferry.yaml, under a given node name, reading jobs' files from a
 * local folder. Prints "ready" once started; stops cleanly on SIGTERM.
 *
 *   node test/support/farm-node.ts <ferry.yaml> <node name> <library folder> <farm lease ms> [database url]
 */
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { createApp } from "../../src/app.ts";
import { parseConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { deviceKinds } from "../../src/devices/devices.ts";
import { localAdapter } from "../../src/storage/local/local.ts";
import { folderJobFiles } from "./farm-files.ts";

const [configPath, node, library, leaseMs, databaseUrl] = process.argv.slice(2);
if (!configPath || !node || !library || !leaseMs)
  throw new Error(
    "usage: farm-node.ts <ferry.yaml> <node name> <library folder> <farm lease ms> [database url]",
  );
const config = parseConfig(await readFile(configPath, "utf8"), configPath, { deviceKinds, env: {} });
const adapter = localAdapter.create(
  { path: library },
  { name: "library", logger: silentLogger, baseDir: dirname(configPath) },
);
const app = await createApp(config, {
  logger: silentLogger,
  node,
  jobFiles: folderJobFiles(adapter),
  farmLeaseMs: Number(leaseMs),
  ...(databaseUrl ? { databaseUrl } : {}),
});
await app.start();
process.stdout.write("ready\n");
process.once("SIGTERM", () => void app.stop().then(() => process.exit(0)));
