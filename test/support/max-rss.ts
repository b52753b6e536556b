/**
 * Preloaded into a child process (`node --import <this file> ...`): at exit it writes the
 * process's peak resident set size in bytes (the kernel's own high-water mark, getrusage's
 * ru_maxrss) to the file named by FERRY_MAX_RSS_FILE. Sampling RSS from outside misses a peak
 * between samples and slows with the machine's load; the high-water mark does neither.
 */
import { writeFileSync } from "node:fs";

const out = process.env.FERRY_MAX_RSS_FILE;
if (out !== undefined && out !== "") {
  process.on("exit", () => writeFileSync(out, String(process.resourceUsage().maxRSS * 1024)));
}
