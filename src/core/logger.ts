/**
 * The logger shape core code depends on (pino's, narrowed). Levels: error = a human must act,
 * warn = degraded or retrying, info = lifecycle, debug = detail.
 */
export interface LogFn {
  (message: string): void;
  (fields: Record<string, unknown>, message: string): void;
}

export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop: LogFn = () => undefined;

export const silentLogger: Logger = {
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  child: () => silentLogger,
};
