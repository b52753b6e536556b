/**
 * What kind of network failure a Node, undici or TLS error is, for the adapters' errors.ts. Each
 * adapter still picks its own FerryError code and wording per kind (a timeout means "away" to one
 * protocol and "lost" to another); this file only reads the error codes.
 */

/** A kind of failure below the protocol, or at its TLS layer. */
export type FailureKind = "unreachable" | "timed-out" | "interrupted" | "untrusted";

export interface NetworkFailure {
  kind: FailureKind;
  /** The first code of the error chain that is of this kind, e.g. "ECONNREFUSED". */
  code: string;
}

/** Nobody answered at the address (refused, no route, no such host): the device is away. */
const UNREACHABLE: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  // undici's own connect timeout: no connection was ever made.
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * The OS gave up waiting. ETIMEDOUT is the same code for a connect that got no answer and for an
 * open connection whose peer fell silent, so whether it means "away" or "lost" is the adapter's call.
 */
const TIMED_OUT: ReadonlySet<string> = new Set(["ETIMEDOUT"]);

/** A connection that was open broke, or stalled mid-answer: worth another attempt. */
const INTERRUPTED: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_DESTROYED",
]);

/** The server's certificate does not check out: retrying will not help, a human must (ca_file). */
const UNTRUSTED =
  /^(?:CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID)/;

/** Most telling first: an address with nobody there explains a reset or a timeout beside it. */
const ORDER: readonly FailureKind[] = ["unreachable", "timed-out", "interrupted", "untrusted"];

/**
 * The string codes of `error`, its `cause` chain and AggregateError members (Node's happy-eyeballs
 * connect, undici's "fetch failed" wrapper), outermost first; bounded against cycles.
 */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let at: unknown = error, depth = 0; at instanceof Error && depth < 5; depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    for (const inner of at instanceof AggregateError ? at.errors : []) codes.push(...errorCodes(inner));
    at = at.cause;
  }
  return codes;
}

/** The kind of one error code, if it is a network one. */
export function codeKind(code: string): FailureKind | undefined {
  if (UNREACHABLE.has(code)) return "unreachable";
  if (TIMED_OUT.has(code)) return "timed-out";
  if (INTERRUPTED.has(code)) return "interrupted";
  if (UNTRUSTED.test(code)) return "untrusted";
  return undefined;
}

/** The network failure `error` stands for (the first kind in ORDER any of its codes has), if any. */
export function networkFailure(error: unknown): NetworkFailure | undefined {
  const found = errorCodes(error).map((code) => ({ code, kind: codeKind(code) }));
  for (const kind of ORDER) {
    const hit = found.find((f) => f.kind === kind);
    if (hit !== undefined) return { kind, code: hit.code };
  }
  return undefined;
}
