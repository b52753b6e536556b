/**
 * What a print file's text tells of the print: how long the slicer says it takes, and the
 * temperatures it heats to. G-code is text; a binary G-code (.bgcode) keeps the same slicer
 * metadata as plain "key=value" text in its (uncompressed) metadata blocks, so one scan serves both.
 * The simulated printers read files with it, and the farm's library reads the estimate with it.
 */

/** Print files a printer can start: G-code and binary G-code. */
export function isPrintFile(name: string): boolean {
  return /\.(gcode|gco|gc|g|bgcode|bgc)$/i.test(name);
}

/** Bytes scanned at each end of a file: the slicer writes its estimate near the start or the end. */
export const SCAN_BYTES = 1 << 20;

/** "1d 2h 3m 4s" (any of the parts) in seconds; undefined when there is no part. */
export function parseDuration(text: string): number | undefined {
  let seconds = 0;
  let found = false;
  for (const m of text.matchAll(/(\d+)\s*([dhms])/g)) {
    found = true;
    const n = Number(m[1]);
    seconds += n * ({ d: 86_400, h: 3600, m: 60, s: 1 } as const)[m[2] as "d" | "h" | "m" | "s"];
  }
  return found ? seconds : undefined;
}

/** The parts of `content` a scan looks at, as latin1 text (G-code is ASCII). */
function scanned(content: Buffer): string {
  if (content.length <= 2 * SCAN_BYTES) return content.toString("latin1");
  return (
    content.subarray(0, SCAN_BYTES).toString("latin1") +
    "\n" +
    content.subarray(content.length - SCAN_BYTES).toString("latin1")
  );
}

export interface GcodeFacts {
  /** The slicer's estimated printing time in seconds, when the file tells it. */
  estimatedS?: number;
  /** The highest hotend and bed targets the file sets (M104/M109, M140/M190), °C: its print temperatures. */
  toolTarget?: number;
  bedTarget?: number;
}

/**
 * Reads the slicer's estimate (estimatedSeconds) and the print temperatures from the first and
 * last SCAN_BYTES of a file.
 */
export function readGcode(content: Buffer | undefined): GcodeFacts {
  if (!content || content.length === 0) return {};
  const text = scanned(content);
  const facts: GcodeFacts = {};
  const estimatedS = estimatedSeconds(text);
  if (estimatedS !== undefined) facts.estimatedS = estimatedS;
  const tool = highest(text, /^M10[49]\s+(?:[^;\n]*\s)?S(\d+(?:\.\d+)?)/gm);
  if (tool !== undefined) facts.toolTarget = tool;
  const bed = highest(text, /^M1[49]0\s+(?:[^;\n]*\s)?S(\d+(?:\.\d+)?)/gm);
  if (bed !== undefined) facts.bedTarget = bed;
  return facts;
}

/**
 * The slicer's estimate in seconds from the text of a print file (or the parts of it that were
 * read): PrusaSlicer's (and SuperSlicer's, OrcaSlicer's) normal-mode estimate, OrcaSlicer's and
 * Bambu Studio's `; model printing time: 1h 2m; total estimated time: 1h 5m`, Cura's `;TIME:3723`,
 * else the largest M73 remaining time.
 */
export function estimatedSeconds(text: string): number | undefined {
  for (const pattern of [
    /estimated printing time \(normal mode\)\s*=\s*([^\n\r]*)/,
    /total estimated time\s*:\s*([^\n\r;]*)/,
  ]) {
    const match = pattern.exec(text);
    const seconds = match ? parseDuration(match[1] ?? "") : undefined;
    if (seconds !== undefined && seconds > 0) return seconds;
  }
  const cura = /^;TIME:(\d+(?:\.\d+)?)\s*$/m.exec(text);
  if (cura && Number(cura[1]) > 0) return Math.round(Number(cura[1]));
  let minutes: number | undefined;
  for (const m of text.matchAll(/^M73\s+P\d+(?:\.\d+)?\s+R(\d+)/gm)) {
    minutes = Math.max(minutes ?? 0, Number(m[1]));
  }
  return minutes !== undefined && minutes > 0 ? minutes * 60 : undefined;
}

function highest(text: string, pattern: RegExp): number | undefined {
  let max: number | undefined;
  for (const m of text.matchAll(pattern)) max = Math.max(max ?? 0, Number(m[1]));
  return max === undefined || max <= 0 ? undefined : max;
}
