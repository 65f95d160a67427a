// A monotonic clock for durations, deadlines and the exit trace that does not load
// node:perf_hooks: Node's `performance` global loads it (and what it needs) on first use, ~1 ms
// of a command's start, and nothing else of it is used. It costs what performance.now() costs
// (both read the same clock; ~70-90 ns here).

/** Milliseconds from an arbitrary origin; only differences mean anything. */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/** When this process started, on monotonicMs's clock: the same in every thread. */
const processStart = monotonicMs() - process.uptime() * 1e3;

/**
 * Milliseconds since this process started, the same in every thread (performance.now() counts
 * from each worker's own start).
 */
export function processMs(): number {
  return monotonicMs() - processStart;
}
