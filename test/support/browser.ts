/**
 * A headless Chromium for the dashboard's tests and benchmark: Debian's own (`apt-get install
 * chromium`, test/servers/install.sh), driven by playwright-core over its DevTools protocol; no
 * browser is downloaded. FERRY_CHROMIUM names another binary.
 *
 * Without it the browser tests report themselves skipped with the reason; with
 * FERRY_REQUIRE_SERVERS=1 (.ci/run) they fail instead.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { serversRequired } from "../servers/common.ts";

export const CHROMIUM = process.env.FERRY_CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
}

/** `test()`/`describe()` options: skipped with the reason, unless servers are required. */
export function browserTestOptions(): { skip?: string } {
  const reason = browserMissing();
  return reason === undefined || serversRequired() ? {} : { skip: reason };
}

export async function launchBrowser(): Promise<Browser> {
  const reason = browserMissing();
  if (reason !== undefined) throw new Error(reason);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // CI runs as root, where Chromium's sandbox cannot start; the pages are our own.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}
