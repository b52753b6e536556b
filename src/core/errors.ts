/**
 * The one error type that crosses module boundaries. Adapters translate native errors into it
 * (each in its own errors.ts) so the engine can decide what to do from `code` and `retryable` alone.
 */
export const ERROR_CODES = [
  "NOT_FOUND",
  "EXISTS",
  "NOT_EMPTY",
  "AUTH",
  "PERMISSION",
  "NO_SPACE",
  "NAME_INVALID",
  "BUSY",
  "UNAVAILABLE",
  "TRANSIENT",
  "PROTOCOL",
  "UNSUPPORTED",
  /** The device's state does not allow it now (cancel with nothing printing, start while busy). */
  "CONFLICT",
  "ABORTED",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Codes that usually clear up by themselves; a caller may override per error. */
const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set(["BUSY", "UNAVAILABLE", "TRANSIENT"]);

export interface FerryErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** Device, file or field the error is about, shown to the user. */
  subject?: string;
}

export class FerryError extends Error {
  override readonly name = "FerryError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly subject: string | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.subject = options.subject;
  }
}

export function isFerryError(value: unknown, code?: ErrorCode): value is FerryError {
  return value instanceof FerryError && (code === undefined || value.code === code);
}

/** Wraps anything thrown into a FerryError; AbortErrors become ABORTED. */
export function toFerryError(value: unknown, fallback: ErrorCode = "PROTOCOL"): FerryError {
  if (value instanceof FerryError) return value;
  if (value instanceof Error && (value.name === "AbortError" || value.name === "TimeoutError")) {
    return new FerryError("ABORTED", value.message, { cause: value });
  }
  const message = value instanceof Error ? value.message : String(value);
  return new FerryError(fallback, message, { cause: value });
}

/** Throws ABORTED when the signal has fired; call between steps of long operations. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new FerryError("ABORTED", "operation aborted", { cause: signal.reason });
  }
}

/** Rejects with ABORTED as soon as the signal fires, even when `promise` never settles. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(new FerryError("ABORTED", "operation aborted", { cause: signal.reason }));
    };
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => {
      signal.removeEventListener("abort", onAbort);
    });
  });
}
