/**
 * Starts `count` simulators on consecutive ports of 127.0.0.1 from `port` (any free ports when
 * `port` is 0). When one of those ports is taken, none is kept and the error (code EADDRINUSE)
 * names it and the range the simulators need.
 */
export async function startOnConsecutivePorts<T extends { close(): Promise<void> }>(
  count: number,
  port: number,
  start: (port: number, index: number) => Promise<T>,
): Promise<T[]> {
  const started: T[] = [];
  let at = 0;
  try {
    for (let i = 0; i < count; i++) {
      at = port === 0 ? 0 : port + i;
      started.push(await start(at, i));
    }
  } catch (error) {
    await Promise.all(started.map((sim) => sim.close()));
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE" && at !== 0) {
      const range = count > 1 ? ` (${count} simulators need ports ${port}-${port + count - 1})` : "";
      throw Object.assign(new Error(`port ${at} of 127.0.0.1 is in use${range}`), {
        code: "EADDRINUSE",
        cause: error,
      });
    }
    throw error;
  }
  return started;
}
