// A monotonic clock for durations and deadlines that does not load node:perf_hooks: Node's
// `performance` global loads it (and what it needs) on first use, ~1 ms of `tsvmm container
// run`'s start, which needs nothing else from it. (The exit trace keeps performance.now(): its
// times are documented as ms since the process started, and it is loaded by then.)

/** Milliseconds from an arbitrary origin; only differences mean anything. */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}
