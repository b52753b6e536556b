/** The virtual printer every simulator face shares (see README.md). */
export * from "./printer.ts";
export * from "./files.ts";
export { isPrintFile, parseDuration, readGcode, type GcodeFacts } from "../../core/gcode.ts";
export { printerControl, type BodyParser } from "./control.ts";
