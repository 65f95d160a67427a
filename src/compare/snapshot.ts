// Snapshot/checkpoint: the time to save a paused VM (vm.snapshot(): every vCPU's and device's state
// and guest RAM, zero pages as holes, written to a temporary file, synced and renamed) and to
// restore it in this process (Vm.restore(), memory mapped from the file). tsvmm has no container
// checkpoint (that takes CRIU, which it does not use), so the container figures are "n/a".

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { removeFile } from '../meta/remove-file.js';
import path from 'node:path';
import { Vm } from '../vmm/vm.js';
import type { CompareEnv } from './env.js';
import { notAvailable, withRatios, type Measurement } from './model.js';
import { alongside, rounds, type Options } from './rounds.js';

const NO_CHECKPOINT = 'tsvmm has no container checkpoint/restore (no CRIU): nothing to measure';

export async function measureSnapshot(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const dir = mkdtempSync(path.join(env.workDir, 'snap-'));
  const restoreRuns: number[] = [];
  /** Each run's snapshot file: bytes of disk it takes (zero pages are holes). */
  const diskRuns: number[] = [];
  let fileBytes = 0;
  try {
    const save = await rounds(env, 'snapshot', 'ms', o.runs, [{
      subject: 'vm', method: `vm.snapshot() of a paused ${o.snapshotMemory} VM (test.elf mode=halt); then Vm.restore() of the file`, missing: env.vmMissing,
      run: async () => {
        const file = path.join(dir, 'vm.snap');
        const vm = Vm.boot({ kernel: env.testElf, memory: o.snapshotMemory, cmdline: 'mode=halt' });
        try {
          await vm.waitForOutput('halt: now', 30_000);
          await vm.pause();
          const t0 = performance.now();
          const result = await vm.snapshot(file);
          const ms = performance.now() - t0;
          fileBytes = result.fileSize;
          diskRuns.push((statSync(file).blocks * 512) / 2 ** 20);
          const t1 = performance.now();
          const clone = await Vm.restore(file, { start: false });
          restoreRuns.push(performance.now() - t1);
          await clone.stop();
          return ms;
        } finally {
          await vm.stop();
          removeFile(file);
        }
      },
    }]);
    const restore = alongside(save, o.runs, () => restoreRuns);
    const disk = alongside(save, o.runs, () => diskRuns, (f) => ({ unit: 'MiB', ...(f.na ? {} : { method: `the snapshot file of ${f.method.split(';')[0]}: its blocks on disk` }) }));
    const container = (unit: string) => notAvailable('container', 'checkpoint of a running container', unit, NO_CHECKPOINT);
    return [
      withRatios({
        id: 'snapshot-save', title: 'Snapshot of a paused instance', unit: 'ms', higherIsBetter: false,
        figures: [container('ms'), ...save],
        notes: [],
        description: 'Saving the whole state of a paused instance to a file (lower is better). Natively there is nothing to snapshot.',
      }),
      withRatios({
        id: 'snapshot-restore', title: 'Restore from the snapshot', unit: 'ms', higherIsBetter: false,
        figures: [container('ms'), ...restore], notes: [],
        description: 'Building a VM from the snapshot file, ready to run (lower is better).',
      }),
      withRatios({
        id: 'snapshot-disk', title: 'Snapshot size on disk', unit: 'MiB', higherIsBetter: false,
        figures: [container('MiB'), ...disk],
        notes: fileBytes ? [`Its apparent size is ${(fileBytes / 2 ** 20).toFixed(1)} MiB: the guest's untouched pages are holes, which take no disk.`] : [],
        description: `Disk the snapshot of a paused ${o.snapshotMemory} VM takes (lower is better).`,
      }),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
