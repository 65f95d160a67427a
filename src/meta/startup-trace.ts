// TSVMM_STARTUP_TRACE=1: each phase of a VM's start, as it ends, on stderr in one line
// `tsvmm-startup PHASE MS`, MS being CLOCK_MONOTONIC in milliseconds (process.hrtime), so that a
// caller can put the lines on its own clock (spawn, first console byte) and on the kernel's (a
// trace with trace_clock mono). The first line is the process's own start: Node's time origin,
// and the steps of Node's start-up after it. Used to find where the start goes where it is slow
// (nested under a software CPU, README "Booting Linux"); off, a mark costs one comparison.

import { createRequire } from 'node:module';
import { monotonicMs } from './clock.js';

const enabled = process.env.TSVMM_STARTUP_TRACE === '1';
/**
 * Node's own start is the main thread's to print: a vCPU thread's nodeTiming is that worker's
 * start (its environment and bootstrap), which would be reported a second time under the same
 * names. node:worker_threads only when tracing, as src/vmm/threads.ts loads it only when needed.
 */
let first = enabled && (createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads')).isMainThread;

/** Notes that `phase` has just ended (a no-op unless TSVMM_STARTUP_TRACE=1). */
export function startupMark(phase: string): void {
  if (!enabled) return;
  const at = monotonicMs();
  if (first) {
    first = false;
    // performance.now() counts from Node's time origin, the start of the process. (The global
    // loads node:perf_hooks, which tsvmm otherwise leaves alone: only when tracing.)
    const origin = at - performance.now();
    const { v8Start, environment, bootstrapComplete } = performance.nodeTiming;
    const node = { process: origin, v8: origin + v8Start, environment: origin + environment, bootstrap: origin + bootstrapComplete };
    for (const [name, ms] of Object.entries(node)) process.stderr.write(`tsvmm-startup node-${name} ${ms.toFixed(2)}\n`);
  }
  process.stderr.write(`tsvmm-startup ${phase} ${at.toFixed(2)}\n`);
}
