/** Exit codes: 0 everything planned was done; 1 something failed or was unreachable; 2 bad config or usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A mistake in how Ferry was called; printed without a stack trace, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
