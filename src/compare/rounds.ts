// Runs contenders in interleaved rounds (native, container, VM, native, ...), so that the drift of
// a shared, noisy machine hits all of them alike, after one untimed warm-up run each. A contender
// that cannot run here, or whose run fails, gets an "n/a" figure with the reason.

import type { CompareEnv } from './env.js';
import { measured, notAvailable, type Figure, type Subject } from './model.js';
import { summarize } from './stats.js';

export interface Options {
  quick: boolean;
  /** Runs per figure. */
  runs: number;
  /** LCG steps for the CPU-bound work. */
  lcgLoops: number;
  /** Port-I/O exits (VM) and system calls (native, container). */
  exits: number;
  /** Bytes streamed each way for the I/O figures. */
  ioBytes: number;
  /** Request size for the I/O figures. */
  ioRequest: number;
  /** How long each network stream lasts, in ms. */
  netMs: number;
  /** Network: runs per figure (fewer with --quick: a VM's run takes about a second more than its stream). */
  netRuns: number;
  /** Memory of each VM and limit of each container where one size is used (density, memory). */
  instanceMemory: string;
  /** Density: host memory the instances may take, in bytes. */
  budgetBytes: number;
  /** Density: at most this many instances of a kind. */
  densityCap: number;
  /** Density: stop starting instances of a kind after this long. */
  densityTimeMs: number;
  /** Density: runs (each starts a whole fleet). */
  densityRuns: number;
  /** Guest RAM of the VM that is snapshotted. */
  snapshotMemory: string;
}

export interface Contender {
  subject: Subject;
  method: string;
  /** Why it cannot run here, if it cannot. */
  missing?: string | undefined;
  /** One run; resolves with the value in the measurement's unit. */
  run: () => Promise<number>;
}

export async function rounds(env: CompareEnv, title: string, unit: string, runs: number, contenders: Contender[]): Promise<Figure[]> {
  const values = new Map<Subject, number[]>();
  const failed = new Map<Subject, string>();
  for (const c of contenders) {
    values.set(c.subject, []);
    if (c.missing) failed.set(c.subject, c.missing);
  }
  for (let round = -1; round < runs; round++) {
    for (const c of contenders) {
      if (failed.has(c.subject)) continue;
      try {
        const v = await c.run();
        if (!Number.isFinite(v)) throw new Error(`measured ${v}`);
        if (round >= 0) values.get(c.subject)!.push(v);
      } catch (error) {
        const reason = `the run failed: ${(error as Error).message}`;
        env.log(`${title}, ${c.subject}: ${reason}`);
        failed.set(c.subject, reason);
      }
    }
  }
  return contenders.map((c) => {
    const reason = failed.get(c.subject);
    return reason ? notAvailable(c.subject, c.method, unit, reason) : measured(c.subject, c.method, unit, values.get(c.subject)!);
  });
}

/**
 * More figures from the same runs as `figures` (rounds()' result), from values each contender's run
 * recorded beside the one it returned: a subject's last `runs` values (the warm-up run's came
 * first, as rounds() drops it), with `change` (its method, its unit) applied; an n/a figure stays
 * n/a, with `change` too.
 */
export function alongside(figures: Figure[], runs: number, recorded: (subject: Subject) => number[], change: (f: Figure) => Partial<Pick<Figure, 'method' | 'unit'>> = () => ({})): Figure[] {
  return figures.map((f) => {
    if (f.na) return { ...f, ...change(f) };
    const values = recorded(f.subject).slice(-runs);
    return { ...f, ...change(f), runs: values, summary: summarize(values) };
  });
}
