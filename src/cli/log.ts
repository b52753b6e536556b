/**
 * The process logger, on stderr; FERRY_LOG_LEVEL picks the level (default warn). `json`: pino's
 * JSON lines, for machines (`--json`); `human`: one line of words per entry, for a terminal.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import type { Logger } from "../core/logger.ts";

const LEVELS: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warning",
  50: "error",
  60: "fatal",
};

/**
 * Fields that may hold a secret, censored wherever a log entry carries them (the server logs no
 * headers or bodies; this is the net under that).
 */
export const REDACTED_FIELDS = [
  "authorization",
  "cookie",
  "password",
  "token",
  "secret",
  "*.authorization",
  "*.cookie",
  "*.password",
  "*.token",
  "*.secret",
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["set-cookie"]',
  '*.headers["x-csrf-token"]',
];

export const LOG_REDACTION = { paths: REDACTED_FIELDS, censor: "[redacted]" };

export function createLogger(format: "json" | "human" = process.stderr.isTTY ? "human" : "json"): Logger {
  const level = process.env.FERRY_LOG_LEVEL ?? "warn";
  if (format === "json") return pino({ level, base: null, redact: LOG_REDACTION }, pino.destination(2));
  return pino({ level, base: null, timestamp: false, redact: LOG_REDACTION }, humanLines());
}

/** pino's JSON lines as `ferry: warning: message (key=value, ...)`. */
function humanLines(): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString("utf8").split("\n")) {
        if (text === "") continue;
        try {
          const { level, msg, ...fields } = JSON.parse(text) as Record<string, unknown>;
          const extra = Object.entries(fields)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(", ");
          const word = LEVELS[Number(level)] ?? "log";
          const message = typeof msg === "string" ? msg : JSON.stringify(msg);
          process.stderr.write(`ferry: ${word}: ${message}${extra ? ` (${extra})` : ""}\n`);
        } catch {
          process.stderr.write(text + "\n");
        }
      }
      done();
    },
  });
}
