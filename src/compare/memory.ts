// Host memory: what one idle instance holds on the host. Natively, the workload program's resident
// set (/proc/PID/status VmRSS, peak VmHWM) while it waits (`compare-work hold`); in a container,
// the same program under a memory limit, as its cgroup charges it (memory.usage_in_bytes and
// memory.max_usage_in_bytes, or memory.current/peak on cgroup v2: its processes' pages plus the
// page cache and kernel memory charged to it); in a VM, the resident set of a whole `tsvmm run`
// process (Node, its worker threads, and the guest pages touched) whose guest has halted.

import type { CompareEnv } from './env.js';
import { withRatios, type Measurement } from './model.js';
import { rounds, type Options } from './rounds.js';
import { median, summarize } from './stats.js';
import { holdContainer, holdNative, holdVmProcess, type Held } from './run.js';

const MiB = 2 ** 20;

export async function measureMemory(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const T = 30_000;
  // One instance per round serves both figures.
  const samples = new Map<string, { current: number; peak: number }>();
  const processRss: number[] = [];
  const sample = (who: string) => async (start: () => Promise<Held>) => {
    const h = await start();
    try {
      await new Promise((r) => setTimeout(r, 100)); // let it settle after its first line
      const m = h.memory();
      samples.set(who, m);
      if (h.processMemory) processRss.push(h.processMemory().current / MiB);
      return m.current / MiB;
    } finally {
      await h.stop();
    }
  };
  const methods = {
    native: 'compare-work hold: VmRSS / VmHWM of the process',
    container: `compare-work hold in a container limited to ${o.instanceMemory}: its memory cgroup's usage / max usage`,
    vm: `tsvmm run --mem ${o.instanceMemory} test.elf mode=halt: VmRSS / VmHWM of the VMM process`,
  };
  const peaks = new Map<string, number[]>([['native', []], ['container', []], ['vm', []]]);
  const withPeak = (who: string, f: (start: () => Promise<Held>) => Promise<number>, start: () => Promise<Held>) => async () => {
    const v = await f(start);
    peaks.get(who)!.push(samples.get(who)!.peak / MiB);
    return v;
  };
  const steady = await rounds(env, 'memory', 'MiB', o.runs, [
    { subject: 'native', method: methods.native, run: withPeak('native', sample('native'), () => holdNative(env, T)) },
    { subject: 'container', method: methods.container, missing: env.containerMissing, run: withPeak('container', sample('container'), () => holdContainer(env, o.instanceMemory, T)) },
    { subject: 'vm', method: methods.vm, missing: env.vmMissing, run: withPeak('vm', sample('vm'), () => holdVmProcess(env, o.instanceMemory, T)) },
  ]);
  // The warm-up round's peaks came first; keep the last `runs` ones, as for the steady figures.
  const peakFigures = steady.map((f) => {
    const runs = peaks.get(f.subject)!.slice(-o.runs);
    return f.na ? { ...f, runs: [] } : { ...f, runs, summary: null };
  });
  for (const f of peakFigures) if (!f.na) f.summary = summarize(f.runs);
  const notes = (figs: typeof steady) => {
    const native = figs.find((f) => f.subject === 'native')?.summary?.median;
    return native === undefined ? [] : figs.filter((f) => f.subject !== 'native' && f.summary)
      .map((f) => `${f.subject === 'vm' ? 'VM' : 'container'} − native: ${(f.summary!.median - native).toFixed(2)} MiB (medians).`);
  };
  const steadyNotes = notes(steady);
  if (processRss.length && !steady.find((f) => f.subject === 'container')?.na) {
    steadyNotes.push(`The container's workload process itself has a VmRSS of ${median(processRss.slice(-o.runs)).toFixed(2)} MiB (median), as natively; `
      + 'its cgroup is charged only for the pages first brought in inside it (the program\'s pages, already in the page cache, are charged elsewhere).');
  }
  return [
    withRatios({
      id: 'memory-steady', title: 'Host memory, steady', unit: 'MiB', higherIsBetter: false, figures: steady, notes: steadyNotes,
      description: 'Host memory one idle instance holds once its workload has started (lower is better).',
    }),
    withRatios({
      id: 'memory-peak', title: 'Host memory, peak', unit: 'MiB', higherIsBetter: false, figures: peakFigures, notes: notes(peakFigures),
      description: 'The most host memory the same instance held since it started (lower is better).',
    }),
  ];
}
