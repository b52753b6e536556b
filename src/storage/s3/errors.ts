/**
 * S3 answers and network failures as FerryErrors. Messages name the device, the operation and the
 * path (or the bucket, when the bucket is the problem) and carry the server's error code.
 */
import { FerryError, type ErrorCode } from "../../core/errors.ts";
import { networkFailure } from "../../core/net-errors.ts";

export interface S3ErrorContext {
  /** Device name from ferry.yaml. */
  storage: string;
  bucket: string;
  /** What was attempted, e.g. "stat" or "upload part 3 of". */
  operation: string;
  /** Ferry path the request was about ("" is the root). */
  path?: string;
  /** The caller's signal: when it fired, the failure is ABORTED whatever the socket said. */
  signal?: AbortSignal | undefined;
}

/** Error codes of S3 (and of RGW, which speaks the same words) that say what happened. */
const SERVICE_CODES: Readonly<Record<string, ErrorCode>> = {
  NoSuchKey: "NOT_FOUND",
  NotFound: "NOT_FOUND",
  NoSuchUpload: "NOT_FOUND",
  InvalidAccessKeyId: "AUTH",
  SignatureDoesNotMatch: "AUTH",
  InvalidToken: "AUTH",
  ExpiredToken: "AUTH",
  TokenRefreshRequired: "AUTH",
  AuthorizationHeaderMalformed: "AUTH",
  MissingSecurityHeader: "AUTH",
  // The signature holds a time: a clock far off is refused like a wrong key, and fixed the same way (by a human).
  RequestTimeTooSkewed: "AUTH",
  AccessDenied: "PERMISSION",
  AllAccessDisabled: "PERMISSION",
  AccountProblem: "PERMISSION",
  InvalidObjectState: "PERMISSION",
  QuotaExceeded: "NO_SPACE",
  InsufficientStorage: "NO_SPACE",
  EntityTooLarge: "UNSUPPORTED",
  InvalidObjectName: "NAME_INVALID",
  KeyTooLongError: "NAME_INVALID",
  SlowDown: "BUSY",
  OperationAborted: "BUSY",
  ServiceUnavailable: "UNAVAILABLE",
  InternalError: "TRANSIENT",
  RequestTimeout: "TRANSIENT",
  BadDigest: "TRANSIENT",
  XAmzContentSHA256Mismatch: "TRANSIENT",
  NotImplemented: "UNSUPPORTED",
  MethodNotAllowed: "UNSUPPORTED",
};

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  401: "AUTH",
  // A HEAD has no body to say why; with a wrong key or secret, a 403 is all S3 answers.
  403: "AUTH",
  404: "NOT_FOUND",
  409: "BUSY",
  429: "BUSY",
  503: "UNAVAILABLE",
  507: "NO_SPACE",
};

/** The parts they are made of, not a missing file: a retried upload starts or resumes afresh. */
const RETRYABLE_CODES = new Set(["InvalidPart", "InvalidPartOrder", "EntityTooSmall", "IncompleteBody"]);

const WORDS: Readonly<Partial<Record<ErrorCode, string>>> = {
  NOT_FOUND: "no such file or folder",
  AUTH: "the server refused the access key or secret",
  PERMISSION: "access denied",
  NO_SPACE: "quota exceeded or no space left",
  NAME_INVALID: "the server refuses this name (keys have at most 1024 bytes)",
  BUSY: "the server asks to slow down",
  UNAVAILABLE: "the server is unavailable",
  TRANSIENT: "the server failed",
  UNSUPPORTED: "the server does not support this",
};

interface ServiceError {
  name: string;
  message: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
}

/** An error the server answered (the SDK's S3ServiceException), as opposed to one below HTTP. */
function isServiceError(error: unknown): error is ServiceError & Error {
  return error instanceof Error && "$metadata" in error && "$fault" in error;
}

function where(context: S3ErrorContext): string {
  const path = context.path === undefined ? "" : ` ${context.path === "" ? "/" : context.path}`;
  return `${context.storage}: ${context.operation}${path}`;
}

function subjectOf(context: S3ErrorContext): { subject?: string } {
  return context.path === undefined ? {} : { subject: context.path };
}

/** The S3 error code of a service error ("NoSuchKey"), or undefined for anything else. */
export function serviceCode(error: unknown): string | undefined {
  return isServiceError(error) ? error.name : undefined;
}

/** A FerryError for `error`, which happened doing `context.operation`. */
export function s3Error(error: unknown, context: S3ErrorContext): FerryError {
  if (error instanceof FerryError) return error;
  const options = { cause: error, ...subjectOf(context) };
  const name = error instanceof Error ? error.name : "";
  if (context.signal?.aborted || name === "AbortError") {
    return new FerryError("ABORTED", `${where(context)}: aborted`, options);
  }
  if (isServiceError(error)) return serviceError(error, context);
  const message = error instanceof Error ? error.message : String(error);
  const failure = networkFailure(error);
  // The SDK's own timers: no connection made in time (away), or an open one silent too long (lost).
  const sdkTimeout =
    name === "TimeoutError" ? (/establish/i.test(message) ? "unreachable" : "timed-out") : undefined;
  const kind = failure?.kind ?? sdkTimeout;
  if (kind === "unreachable") {
    return new FerryError(
      "UNAVAILABLE",
      `${where(context)}: server unreachable (${failure?.code ?? message})`,
      options,
    );
  }
  if (kind === "timed-out" || kind === "interrupted" || /socket hang up/i.test(message)) {
    return new FerryError("TRANSIENT", `${where(context)}: connection lost (${message})`, options);
  }
  if (kind === "untrusted") {
    return new FerryError(
      "AUTH",
      `${where(context)}: the server's TLS certificate is not trusted (${failure?.code ?? ""}); trust its CA with NODE_EXTRA_CA_CERTS`,
      { ...options, retryable: false },
    );
  }
  return new FerryError("PROTOCOL", `${where(context)}: ${message}`, options);
}

function serviceError(error: ServiceError & Error, context: S3ErrorContext): FerryError {
  const status = error.$metadata?.httpStatusCode;
  const label = `${error.name}${status === undefined ? "" : `, HTTP ${status}`}`;
  const options = { cause: error, ...subjectOf(context) };
  if (error.name === "NoSuchBucket" || error.name === "InvalidBucketName") {
    const what = error.name === "NoSuchBucket" ? "does not exist" : "is not a valid bucket name";
    return new FerryError("NOT_FOUND", `${context.storage}: bucket "${context.bucket}" ${what} (${label})`, {
      cause: error,
      subject: context.bucket,
      retryable: false,
    });
  }
  const code: ErrorCode =
    SERVICE_CODES[error.name] ??
    (status === undefined ? undefined : STATUS_CODES[status]) ??
    (status !== undefined && status >= 500 ? "TRANSIENT" : "PROTOCOL");
  // The SDK says "UnknownError" where the body had no message (HEAD, some RGW answers).
  const detail = error.message && error.message !== "UnknownError" ? `: ${error.message}` : "";
  const words = WORDS[code] ?? "the server refused the request";
  return new FerryError(code, `${where(context)}: ${words} (${label})${detail}`, {
    ...options,
    ...(RETRYABLE_CODES.has(error.name) ? { retryable: true } : {}),
  });
}

/** A FerryError about this device that no native error caused. */
export function s3Failure(code: ErrorCode, context: S3ErrorContext, what: string): FerryError {
  return new FerryError(code, `${where(context)}: ${what}`, subjectOf(context));
}
