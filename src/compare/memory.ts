// Host memory: what one idle instance holds on the host, counted the same way for every kind
// (run.ts's HostMemory, read by src/api/host-memory.ts). Natively, the workload program waiting
// (`compare-work hold`); in a container, the same program under a memory limit; in a VM, a whole
// `tsvmm run` process (Node, its worker threads, and the guest pages touched) whose guest has
// halted. Three figures: PSS (what each adds to the host's total: shared pages divided among the
// processes that map them), private memory (what stopping it gives back), and the peak.

import type { CompareEnv } from './env.js';
import { withRatios, type Figure, type Measurement, type Subject } from './model.js';
import { alongside, rounds, type Options } from './rounds.js';
import { median } from './stats.js';
import { holdContainer, holdNative, holdVmProcess, type Held, type HostMemory } from './run.js';

const MiB = 2 ** 20;

export async function measureMemory(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const T = 30_000;
  // One instance per round serves all three figures: the steady one is measured by rounds(),
  // the private and peak ones are kept here from the same samples.
  const samples = new Map<Subject, HostMemory[]>([['native', []], ['container', []], ['vm', []]]);
  const processRss: number[] = [];
  const sample = (who: Subject, start: () => Promise<Held>) => async () => {
    const h = await start();
    try {
      await new Promise((r) => setTimeout(r, 100)); // let it settle after its first line
      const m = h.memory();
      samples.get(who)!.push(m);
      if (h.processRss) processRss.push(h.processRss() / MiB);
      return m.current / MiB;
    } finally {
      await h.stop();
    }
  };
  const methods = {
    native: 'compare-work hold: its process\'s PSS (/proc/PID/smaps_rollup)',
    container: `compare-work hold in a container limited to ${o.instanceMemory}: its memory cgroup's charge plus the PSS of its helper process (container-init)`,
    vm: `tsvmm run --mem ${o.instanceMemory} test.elf mode=halt: the PSS of the whole VMM process`,
  };
  const steady = await rounds(env, 'memory', 'MiB', o.runs, [
    { subject: 'native', method: methods.native, run: sample('native', () => holdNative(env, T)) },
    { subject: 'container', method: methods.container, missing: env.containerMissing, run: sample('container', () => holdContainer(env, o.instanceMemory, T)) },
    { subject: 'vm', method: methods.vm, missing: env.vmMissing, run: sample('vm', () => holdVmProcess(env, o.instanceMemory, T)) },
  ]);
  const derived = (pick: (m: HostMemory) => number, method: (f: Figure) => string): Figure[] =>
    alongside(steady, o.runs, (who) => samples.get(who)!.map((m) => pick(m) / MiB), (f) => ({ method: method(f) }));
  const privateFigures = derived((m) => m.private, (f) => f.method.replace(/PSS/g, 'private memory'));
  const peakFigures = derived((m) => m.peak, (f) => (f.subject === 'container'
    ? `the same container: its memory cgroup's peak plus its helper's PSS`
    : `the same ${f.subject === 'vm' ? 'VMM process' : 'process'}: its peak resident set (VmHWM)`));
  const notes = (figs: Figure[]) => {
    const native = figs.find((f) => f.subject === 'native')?.summary?.median;
    return native === undefined ? [] : figs.filter((f) => f.subject !== 'native' && f.summary)
      .map((f) => `${f.subject === 'vm' ? 'VM' : 'container'} − native: ${(f.summary!.median - native).toFixed(2)} MiB (medians).`);
  };
  const steadyNotes = [
    ...notes(steady),
    'PSS (proportional set size) counts a page shared by N processes as 1/N to each, so the PSS of every process on the host adds up to the memory in use; a VM\'s figure is mostly its Node VMM (Node\'s code and heap), not the guest\'s pages.',
  ];
  if (processRss.length && !steady.find((f) => f.subject === 'container')?.na) {
    steadyNotes.push(`The container's workload process itself has a resident set of ${median(processRss.slice(-o.runs)).toFixed(2)} MiB (median), as natively; `
      + 'its cgroup is charged only for the pages first brought in inside it (the program\'s pages, already in the page cache, are charged elsewhere).');
  }
  return [
    withRatios({
      id: 'memory-steady', title: 'Host memory, steady (PSS)', unit: 'MiB', higherIsBetter: false, figures: steady, notes: steadyNotes,
      description: 'Host memory one idle instance holds once its workload has started, counted as PSS (lower is better).',
    }),
    withRatios({
      id: 'memory-private', title: 'Host memory, private', unit: 'MiB', higherIsBetter: false, figures: privateFigures, notes: notes(privateFigures),
      description: 'The part of it no other process shares: what stopping the instance gives back to the host (lower is better).',
    }),
    withRatios({
      id: 'memory-peak', title: 'Host memory, peak', unit: 'MiB', higherIsBetter: false, figures: peakFigures, notes: notes(peakFigures),
      description: 'The most host memory the same instance held since it started (lower is better).',
    }),
  ];
}
