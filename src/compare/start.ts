// Start latency: from the command to the workload's first output line. Natively, spawn() of the
// workload program to its "work: hello"; in a container, Container.run() of the same program to
// that line; in a VM, Vm.boot() of test.elf to its first console line (`exits: start`, printed
// right after the guest's CPL-0 set-up). Container and VM are started through the library in
// this process, so neither pays Node's own start-up (~60 ms), which `tsvmm run` would add.

import type { CompareEnv } from './env.js';
import { withRatios, type Measurement } from './model.js';
import { rounds, type Options } from './rounds.js';
import { runContainer, runNative, runVm } from './run.js';

export async function measureStart(env: CompareEnv, o: Options): Promise<Measurement> {
  const T = 30_000;
  const first = (r: { t0: number; clock: { firstLine?: { at: number } | undefined } }, what: string) => {
    if (!r.clock.firstLine) throw new Error(`${what} printed nothing`);
    return r.clock.firstLine.at - r.t0;
  };
  const figures = await rounds(env, 'start latency', 'ms', o.runs, [
    {
      subject: 'native', method: 'spawn() of compare-work hello → its first line',
      run: async () => first(await runNative(env, ['hello'], [], T), 'native'),
    },
    {
      subject: 'container', method: 'Container.run() (busybox bundle) of compare-work hello → its first line', missing: env.containerMissing,
      run: async () => first(await runContainer(env, ['hello'], [], T), 'container'),
    },
    {
      subject: 'vm', method: `Vm.boot() of test.elf (mode=exits count=0, ${o.instanceMemory}) → its first console line`, missing: env.vmMissing,
      run: async () => first(await runVm({ kernel: env.testElf, memory: o.instanceMemory, cmdline: 'mode=exits count=0' }, [], T), 'VM'),
    },
  ]);
  return withRatios({
    id: 'start', title: 'Start latency', unit: 'ms', higherIsBetter: false, figures, notes: [],
    description: 'From the call that starts the instance to the first line its workload prints (lower is better).',
  });
}
