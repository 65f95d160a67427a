// CPU-bound throughput: N steps of the same 64-bit LCG (x = x·6364136223846793005 + 1442695040888963407),
// one dependent multiply-add each. Natively and in a container the static workload program runs
// it and times the loop itself (CLOCK_MONOTONIC); in the VM test.elf runs the identical loop at CPL 3 (mode=cpl3),
// which prints only its result, so the VM's time is that of a boot with N steps minus that of a
// boot with 1000 steps, in the same round. The results must agree to the bit.

import { selfTimedMs } from './clock.js';
import type { CompareEnv } from './env.js';
import { withRatios, type Measurement } from './model.js';
import { rounds, type Options } from './rounds.js';
import { runContainer, runNative, runVm, type Ran } from './run.js';

const SHORT = 1000;
/** The least time the VM's loop must take over the short boot's, for its figure to mean anything. */
export const MIN_LOOP_MS = 150;

export async function measureCpu(env: CompareEnv, o: Options): Promise<Measurement> {
  const T = 120_000;
  const n = o.lcgLoops;
  const results = new Map<string, Set<string>>();
  const note = (who: string, line: string) => {
    const r = /result=(0x[0-9a-f]+)/.exec(line)?.[1] ?? `no result in "${line}"`;
    if (!results.has(who)) results.set(who, new Set());
    results.get(who)!.add(r);
  };
  const program = async (r: Promise<Ran>, who: string) => {
    const { clock } = await r;
    note(who, clock.stamps.get('work: lcg done')!.line);
    return n / selfTimedMs(clock, 'work: lcg done', who) / 1000;
  };
  const vmBoot = async (loops: number) => {
    const r = await runVm({ kernel: env.testElf, memory: o.instanceMemory, cmdline: `mode=cpl3 loops=${loops}` }, ['cpl3: '], T);
    const s = r.clock.stamps.get('cpl3: ');
    if (!s) throw new Error('test.elf did not print its cpl3 line');
    return { ms: s.at - r.t0, line: s.line };
  };
  const patterns = ['work: lcg start', 'work: lcg done'];
  const figures = await rounds(env, 'CPU-bound', 'Mops/s', o.runs, [
    {
      subject: 'native', method: `compare-work lcg ${n}, timed by itself (CLOCK_MONOTONIC around the loop)`,
      run: () => program(runNative(env, ['lcg', String(n)], patterns, T), 'native'),
    },
    {
      subject: 'container', method: `compare-work lcg ${n} in a container, timed by itself (CLOCK_MONOTONIC around the loop)`, missing: env.containerMissing,
      run: () => program(runContainer(env, ['lcg', String(n)], patterns, T), 'container'),
    },
    {
      subject: 'vm', method: `test.elf mode=cpl3 loops=${n} (the loop at CPL 3): boot-to-result time minus that of loops=${SHORT}`, missing: env.vmMissing,
      run: async () => {
        const long = await vmBoot(n);
        const short = await vmBoot(SHORT);
        note('vm', long.line);
        const ms = long.ms - short.ms;
        if (ms < MIN_LOOP_MS) {
          throw new Error(`the loop took ${ms.toFixed(1)} ms over a short boot (${long.ms.toFixed(1)} against ${short.ms.toFixed(1)} ms), under the ${MIN_LOOP_MS} ms a figure needs over boot jitter`);
        }
        return (n - SHORT) / ms / 1000;
      },
    },
  ]);
  const all = new Set([...results.values()].flatMap((s) => [...s]));
  const notes = [all.size === 1
    ? `The result agrees in every run (${[...results.keys()].join(', ')}): ${[...all][0]} after ${n} steps.`
    : `The results differ: ${[...results].map(([k, v]) => `${k} ${[...v].join('/')}`).join('; ')}.`];
  return withRatios({
    id: 'cpu', title: 'CPU-bound throughput', unit: 'Mops/s', higherIsBetter: true, figures, notes,
    description: `${n} steps of a 64-bit LCG, one dependent multiply-add per step, in millions of steps a second (higher is better).`,
  });
}
