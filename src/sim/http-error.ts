/** An error answer of a simulator: thrown inside a route, written by its server. */
export class SimHttpError extends Error {
  override readonly name = "SimHttpError";
  readonly status: number;
  readonly title: string;
  readonly headers: Record<string, string>;

  constructor(status: number, title: string, text: string, headers: Record<string, string> = {}) {
    super(text);
    this.status = status;
    this.title = title;
    this.headers = headers;
  }

  /** `error` as an answer: itself, or a 500 carrying its message. */
  static of(error: unknown): SimHttpError {
    if (error instanceof SimHttpError) return error;
    return new SimHttpError(
      500,
      "Internal Server Error",
      error instanceof Error ? error.message : String(error),
    );
  }
}
