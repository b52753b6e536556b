/** G-code for farm tests: a simulator prints it for as long as its PrusaSlicer estimate says. */

/** G-code whose estimate is `minutes` long, headed by `tag`, padded with comments to `size` bytes. */
export function estimatedGcode(minutes: number, tag: string, size = 0): Buffer {
  const head = [
    `; ${tag}`,
    "M140 S60",
    "M104 S215",
    "G28",
    "G1 X10 Y10 Z0.2 F3000",
    `; estimated printing time (normal mode) = ${minutes}m 0s`,
    "",
  ].join("\n");
  const pad = Math.max(0, size - head.length);
  const line = "; padding to make the upload long enough to break half way\n";
  return Buffer.from(head + line.repeat(Math.ceil(pad / line.length)).slice(0, pad));
}
