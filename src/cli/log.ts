/** The process logger: pino to stderr; FERRY_LOG_LEVEL picks the level (default warn). */
import { pino } from "pino";
import type { Logger } from "../core/logger.ts";

export function createLogger(): Logger {
  return pino({ level: process.env.FERRY_LOG_LEVEL ?? "warn", base: null }, pino.destination(2));
}
