// Start latency: from the command to the workload's first output line. Natively, spawn() of the
// workload program to its "work: hello"; in a container, Container.run() of the same program to
// that line; in a VM, Vm.boot() of test.elf to its first console line (`exits: start`, printed
// right after the guest's CPL-0 set-up). Container and VM are started through the library in
// this process, so neither pays Node's own start-up (~60 ms), which `tsvmm run` would add.
// The same runs give the start's two parts for container and VM: create() (a VM's memory, KVM
// VM and vCPU threads built; a container's configuration checked) and start() to the first line
// (a container's cgroups, helper, namespaces and exec; a VM's boot).

import type { CompareEnv } from './env.js';
import { notAvailable, withRatios, type Figure, type Measurement, type Subject } from './model.js';
import { alongside, rounds, type Options } from './rounds.js';
import { runContainer, runNative, runVm } from './run.js';

export async function measureStart(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const T = 30_000;
  const parts = new Map<Subject, { create: number; start: number }[]>([['container', []], ['vm', []]]);
  const first = (r: { t0: number; tStart?: number; clock: { firstLine?: { at: number } | undefined } }, what: string, who?: Subject) => {
    if (!r.clock.firstLine) throw new Error(`${what} printed nothing`);
    if (who && r.tStart !== undefined) parts.get(who)!.push({ create: r.tStart - r.t0, start: r.clock.firstLine.at - r.tStart });
    return r.clock.firstLine.at - r.t0;
  };
  const figures = await rounds(env, 'start latency', 'ms', o.runs, [
    {
      subject: 'native', method: 'spawn() of compare-work hello → its first line',
      run: async () => first(await runNative(env, ['hello'], [], T), 'native'),
    },
    {
      subject: 'container', method: 'Container.run() (busybox bundle) of compare-work hello → its first line', missing: env.containerMissing,
      run: async () => first(await runContainer(env, ['hello'], [], T), 'container', 'container'),
    },
    {
      subject: 'vm', method: `Vm.boot() of test.elf (mode=exits count=0, ${o.instanceMemory}) → its first console line`, missing: env.vmMissing,
      run: async () => first(await runVm({ kernel: env.testElf, memory: o.instanceMemory, cmdline: 'mode=exits count=0' }, [], T), 'VM', 'vm'),
    },
  ]);
  const part = (which: 'create' | 'start', method: (f: Figure) => string): Figure[] =>
    alongside(figures.filter((f) => f.subject !== 'native'), o.runs, (who) => parts.get(who)!.map((p) => p[which]), (f) => ({ method: method(f) }));
  const native = (unit: string) => notAvailable('native', 'spawn()', unit, 'a process has no separate set-up step');
  return [
    withRatios({
      id: 'start', title: 'Start latency', unit: 'ms', higherIsBetter: false, figures, notes: [],
      description: 'From the call that starts the instance to the first line its workload prints (lower is better).',
    }),
    withRatios({
      id: 'start-create', title: 'Start: create()', unit: 'ms', higherIsBetter: false, notes: [],
      figures: [native('ms'), ...part('create', (f) => (f.subject === 'vm' ? 'Vm.create(): guest memory, the KVM VM, devices and vCPU threads' : 'Container.create(): the configuration and the host checked'))],
      description: 'The first part of the start latency: building the instance before it runs (lower is better).',
    }),
    withRatios({
      id: 'start-run', title: 'Start: start() → first line', unit: 'ms', higherIsBetter: false, notes: [],
      figures: [native('ms'), ...part('start', (f) => (f.subject === 'vm' ? 'vm.start() → the guest\'s first console line (its boot)' : 'container.start(): cgroups, the helper, namespaces, pivot_root, exec → first line'))],
      description: 'The second part: from start() to the first line the workload prints (lower is better).',
    }),
  ];
}
