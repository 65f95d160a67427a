// Density: how many instances start within a host-memory budget. VMs (a `tsvmm run --mem M`
// process each, test.elf halted after its first line) and containers (compare-work hold, limited
// to M) are started one after another, each waited for until it prints its line, while the host
// memory they hold together (as in the memory figures: the VMM processes' PSS, the
// containers' cgroup charges plus their helpers, counted as in memory.ts: PSS) stays within the
// budget, up to a cap and a time limit. Then all are stopped. Figures: how many ran (a lower bound,
// "≥ N (cap)", when the cap or the time limit stopped them), and the time to start them all.

import type { CompareEnv } from './env.js';
import { measured, notAvailable, withRatios, type Figure, type Measurement, type Subject } from './model.js';
import type { Options } from './rounds.js';
import { holdContainer, holdVmProcess, type Held } from './run.js';

const MiB = 2 ** 20;

interface Fleet {
  count: number;
  ms: number;
  memory: number;
  stoppedBy: 'budget' | 'cap' | 'time';
}

async function fleet(start: () => Promise<Held>, o: Options): Promise<Fleet> {
  const held: Held[] = [];
  const t0 = performance.now();
  let memory = 0;
  let stoppedBy: Fleet['stoppedBy'] = 'cap';
  try {
    while (held.length < o.densityCap) {
      if (performance.now() - t0 > o.densityTimeMs) { stoppedBy = 'time'; break; }
      const h = await start();
      held.push(h);
      memory = held.reduce((sum, x) => sum + x.memory().current, 0);
      if (memory > o.budgetBytes) {
        // The last one went past the budget: it does not count.
        stoppedBy = 'budget';
        break;
      }
    }
    const count = stoppedBy === 'budget' ? held.length - 1 : held.length;
    return { count, ms: performance.now() - t0, memory, stoppedBy };
  } finally {
    await Promise.all(held.map((h) => h.stop().catch(() => {})));
  }
}

export async function measureDensity(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const T = 60_000;
  const kinds: { subject: Subject; method: string; missing: string | undefined; start: () => Promise<Held> }[] = [
    { subject: 'container', method: `containers limited to ${o.instanceMemory} (compare-work hold), charged by their memory cgroups plus their helpers' PSS`, missing: env.containerMissing, start: () => holdContainer(env, o.instanceMemory, T) },
    { subject: 'vm', method: `VMs of ${o.instanceMemory} (tsvmm run, test.elf mode=halt), charged by their processes' PSS (Node's shared pages divided among them)`, missing: env.vmMissing, start: () => holdVmProcess(env, o.instanceMemory, T) },
  ];
  const counts: Figure[] = [];
  const times: Figure[] = [];
  const notes: string[] = [];
  for (const k of kinds) {
    if (k.missing) {
      counts.push(notAvailable(k.subject, k.method, 'instances', k.missing));
      times.push(notAvailable(k.subject, k.method, 'ms/instance', k.missing));
      continue;
    }
    const runs: Fleet[] = [];
    try {
      for (let i = 0; i < o.densityRuns; i++) runs.push(await fleet(k.start, o));
    } catch (error) {
      const reason = `the run failed: ${(error as Error).message}`;
      env.log(`density, ${k.subject}: ${reason}`);
      counts.push(notAvailable(k.subject, k.method, 'instances', reason));
      times.push(notAvailable(k.subject, k.method, 'ms/instance', reason));
      continue;
    }
    const count = measured(k.subject, k.method, 'instances', runs.map((r) => r.count));
    // A fleet that stopped at the cap or the time limit did not find the budget's limit: the count is a lower bound.
    const bound = runs.some((r) => r.stoppedBy === 'cap') ? 'cap' : runs.some((r) => r.stoppedBy === 'time') ? 'time limit' : undefined;
    counts.push(bound ? { ...count, atLeast: bound } : count);
    times.push(measured(k.subject, k.method, 'ms/instance', runs.map((r) => r.ms / Math.max(1, r.count + (r.stoppedBy === 'budget' ? 1 : 0)))));
    const why = [...new Set(runs.map((r) => r.stoppedBy))].join('/');
    notes.push(`${k.subject === 'vm' ? 'VMs' : 'Containers'}: stopped by the ${why}${why === 'cap' ? ` (${o.densityCap})` : why === 'time' ? ` limit (${o.densityTimeMs / 1000} s)` : ''}; `
      + `${runs.map((r) => `${r.count} in ${(r.ms / 1000).toFixed(1)} s holding ${(r.memory / MiB).toFixed(0)} MiB`).join(', ')}.`);
  }
  const budget = `${(o.budgetBytes / MiB).toFixed(0)} MiB`;
  return [
    withRatios({
      id: 'density', title: `Density within ${budget}`, unit: 'instances', higherIsBetter: true, figures: counts, notes,
      description: `Instances started one after another while the host memory they hold stays within ${budget} (at most ${o.densityCap} of a kind, ${o.densityTimeMs / 1000} s) (higher is better).`,
    }),
    withRatios({
      id: 'density-time', title: 'Density: time per instance', unit: 'ms/instance', higherIsBetter: false, figures: times, notes: [],
      description: 'The time to start the whole fleet (each instance waited for until its first line), per instance started (lower is better).',
    }),
  ];
}
