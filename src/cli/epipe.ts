/**
 * `ferry sync --dry-run | head -3`: once the reader has what it wants it closes the pipe, and the
 * next write fails with EPIPE. A C program would be ended quietly by SIGPIPE; Node ignores that
 * signal and reports the failed write as an 'error' event, which, unhandled, is a stack trace.
 * Nobody is left to read what Ferry says, so it stops quietly, with the exit code set so far
 * (0 when none).
 */
export function exitQuietlyWhenOutputCloses(streams: readonly NodeJS.WriteStream[]): void {
  for (const stream of streams) {
    stream.on("error", (error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === "EPIPE") process.exit();
      // Any other failure stays what it was without this listener: an uncaught exception.
      throw error;
    });
  }
}
