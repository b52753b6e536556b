/**
 * What the virtual printer reads from a print file: how long the slicer says it takes, and the
 * temperatures it heats to. G-code is text; a binary G-code (.bgcode) keeps the same slicer
 * metadata as plain "key=value" text in its (uncompressed) metadata blocks, so one scan serves both.
 */

/** Print files a printer can start: G-code and binary G-code. */
export function isPrintFile(name: string): boolean {
  return /\.(gcode|gco|gc|g|bgcode|bgc)$/i.test(name);
}

/** Bytes scanned at each end of a file: the slicer writes its estimate near the start or the end. */
const SCAN_BYTES = 1 << 20;

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
 * Reads the estimate from PrusaSlicer's `; estimated printing time (normal mode) = 1h 2m 3s`
 * (bgcode: `estimated printing time (normal mode)=1h 2m 3s`), else from the M73 lines
 * (`M73 P0 R62`: 62 minutes remain at 0 %, so the largest R is the whole print).
 */
export function readGcode(content: Buffer | undefined): GcodeFacts {
  if (!content || content.length === 0) return {};
  const text = scanned(content);
  const facts: GcodeFacts = {};
  const comment = /estimated printing time \(normal mode\)\s*=\s*([^\n\r]*)/.exec(text);
  const fromComment = comment ? parseDuration(comment[1] ?? "") : undefined;
  if (fromComment !== undefined && fromComment > 0) facts.estimatedS = fromComment;
  else {
    let minutes: number | undefined;
    for (const m of text.matchAll(/^M73\s+P\d+(?:\.\d+)?\s+R(\d+)/gm)) {
      minutes = Math.max(minutes ?? 0, Number(m[1]));
    }
    if (minutes !== undefined && minutes > 0) facts.estimatedS = minutes * 60;
  }
  const tool = highest(text, /^M10[49]\s+(?:[^;\n]*\s)?S(\d+(?:\.\d+)?)/gm);
  if (tool !== undefined) facts.toolTarget = tool;
  const bed = highest(text, /^M1[49]0\s+(?:[^;\n]*\s)?S(\d+(?:\.\d+)?)/gm);
  if (bed !== undefined) facts.bedTarget = bed;
  return facts;
}

function highest(text: string, pattern: RegExp): number | undefined {
  let max: number | undefined;
  for (const m of text.matchAll(pattern)) max = Math.max(max ?? 0, Number(m[1]));
  return max === undefined || max <= 0 ? undefined : max;
}
