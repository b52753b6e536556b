/**
 * Builds the dashboard (web/) into web/dist with Vite, which `ferry serve` serves at `/`.
 *
 *   node scripts/build-web.ts             # build (npm run build)
 *   node scripts/build-web.ts --if-stale  # only when a source is newer than the last build (npm start, .ci/run)
 *
 * The build is written to a temporary folder and renamed into place, so a server never serves a
 * half-written dashboard and an interrupted build leaves the previous one.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { brotliCompress, constants, gzip } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../web", import.meta.url));
const out = join(root, "dist");
const stamp = join(out, ".built");
/** What the build reads besides web/src: a change to any of these rebuilds. */
const inputs = [
  join(root, "src"),
  join(root, "index.html"),
  join(root, "vite.config.ts"),
  fileURLToPath(new URL("../package-lock.json", import.meta.url)),
];

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

export function isStale(): boolean {
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  return inputs.some((input) => existsSync(input) && newest(input) > built);
}

/**
 * Each script and style also as .br and .gz, once at build time, so the server sends them
 * compressed (@fastify/static's preCompressed) without compressing per request.
 */
async function precompress(dir: string): Promise<void> {
  const brotli = promisify(brotliCompress);
  const gz = promisify(gzip);
  for (const name of readdirSync(dir).filter((n) => /\.(js|css|svg)$/.test(n))) {
    const data = await readFile(join(dir, name));
    await writeFile(
      join(dir, `${name}.br`),
      await brotli(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
    );
    await writeFile(join(dir, `${name}.gz`), await gz(data, { level: 9 }));
  }
}

export async function buildWeb(): Promise<void> {
  const { build } = await import("vite");
  const temp = join(root, `dist.${process.pid}.tmp`);
  await rm(temp, { recursive: true, force: true });
  await build({
    configFile: join(root, "vite.config.ts"),
    logLevel: "warn",
    build: { outDir: temp, emptyOutDir: true },
  });
  await precompress(join(temp, "assets"));
  await writeFile(join(temp, ".built"), new Date().toISOString() + "\n");
  const old = join(root, `dist.${process.pid}.old`);
  if (existsSync(out)) await rename(out, old);
  await rename(temp, out);
  await rm(old, { recursive: true, force: true });
}

if (import.meta.main) {
  if (process.argv.includes("--if-stale") && !isStale()) {
    process.stderr.write("ferry: dashboard is up to date (web/dist)\n");
  } else {
    const started = Date.now();
    process.stderr.write("ferry: building the dashboard (web/ → web/dist)...\n");
    await buildWeb();
    process.stderr.write(`ferry: dashboard built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
}
