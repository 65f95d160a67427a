// Exit- and syscall-heavy work: N round trips to the layer below. In the VM, test.elf mode=exits
// does N `outb` to port 0x80 from CPL 0, each a VM exit handled by tsvmm's vCPU thread; natively
// and in a container, the workload program makes N getppid(2) system calls and times the loop
// itself (CLOCK_MONOTONIC); the VM is timed by the host between the two lines the guest prints
// around its loop. The figure is the time per operation.

import { selfTimedMs } from './clock.js';
import type { CompareEnv } from './env.js';
import { withRatios, type Measurement } from './model.js';
import { rounds, type Options } from './rounds.js';
import { runContainer, runNative, runVm } from './run.js';

export async function measureExits(env: CompareEnv, o: Options): Promise<Measurement> {
  const T = 120_000;
  const n = o.exits;
  const perOp = (ms: number) => (ms * 1000) / n;
  const figures = await rounds(env, 'exits/syscalls', 'µs/op', o.runs, [
    {
      subject: 'native', method: `compare-work syscalls ${n}: getppid(2), timed by itself`,
      run: async () => perOp(selfTimedMs((await runNative(env, ['syscalls', String(n)], ['work: syscalls done'], T)).clock, 'work: syscalls done', 'native')),
    },
    {
      subject: 'container', method: `compare-work syscalls ${n} in a container: getppid(2)`, missing: env.containerMissing,
      run: async () => perOp(selfTimedMs((await runContainer(env, ['syscalls', String(n)], ['work: syscalls done'], T)).clock, 'work: syscalls done', 'container')),
    },
    {
      subject: 'vm', method: `test.elf mode=exits count=${n}: outb to port 0x80 from CPL 0, one VM exit each, timed between the lines around the loop`, missing: env.vmMissing,
      run: async () => perOp((await runVm({ kernel: env.testElf, memory: o.instanceMemory, cmdline: `mode=exits count=${n}` }, ['exits: start', 'exits: done'], T)).clock.between('exits: start', 'exits: done', 'VM')),
    },
  ]);
  return withRatios({
    id: 'exits', title: 'Exit/syscall-heavy work', unit: 'µs/op', higherIsBetter: false, figures, notes: [],
    description: `${n} trivial round trips to the layer below: a system call natively and in a container, a port-I/O VM exit in the VM; time per operation (lower is better).`,
  });
}
