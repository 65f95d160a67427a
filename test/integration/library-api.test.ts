// The library as a user imports it: its words, its types, and nothing internal on show.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Vm, type Counter, type DiskConfig, type NetConfig, type RestoreOptions, type SnapshotOptions, type WriteResult } from 'tsvmm';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';

describe('the library API', () => {
  it('exports the types its methods take and give', () => {
    const disk: DiskConfig = { path: 'a.img', readOnly: true };
    const net: NetConfig = { tap: 'tap0' };
    const options: SnapshotOptions & RestoreOptions = { diff: false, diskPaths: { '/old.img': '/new.img' }, verify: true };
    const counter: Counter = 'exits';
    const result: Pick<WriteResult, 'path'> = { path: 'x.snap' };
    expect([disk.path, net.tap, options.verify, counter, result.path]).toEqual(['a.img', 'tap0', true, 'exits', 'x.snap']);
  });

  it('speaks of its options by name, not by CLI flag', () => {
    expect(() => Vm.create({ memory: '8M' })).toThrow(/^memory 8M: at least 16 MiB is needed$/);
    expect(() => Vm.create({ cpus: 0 })).toThrow(/^cpus 0: /);
  });

  it('keeps its internals to itself', () => {
    expect('deviceState' in Vm.prototype).toBe(false);
    expect('emergencyStop' in Vm).toBe(false);
  });

  it.skipIf(kvmMissingReason)('waitForOutput on a VM that has ended rejects at once with VM_EXITED', async () => {
    const vm = Vm.boot({ kernel: TEST_ELF, cmdline: 'mode=info', memory: '32M' });
    await vm.wait();
    expect(vm.outcome).toMatchObject({ kind: 'shutdown' });
    const started = performance.now();
    await expect(vm.waitForOutput('never printed', 20_000)).rejects.toMatchObject({ code: 'VM_EXITED' });
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(vm.waitForOutput('info: cpl=0', 20_000)).resolves.toContain('info: cpl=0');
  });

  it.skipIf(kvmMissingReason)('pause and snapshot run one at a time; resume meanwhile is refused with VM_BUSY', async () => {
    const vm = Vm.boot({ kernel: TEST_ELF, cmdline: 'mode=counter', memory: '32M' });
    await vm.waitForOutput('counter: 2\n');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-lib-')), 'vm.snap');
    const saved = vm.snapshot(file);
    const paused = vm.pause();
    expect(() => vm.resume()).toThrow(expect.objectContaining({ code: 'VM_BUSY' }));
    await saved;
    await paused;
    // The snapshot resumed the VM it had paused, then the pause asked after it paused it for good.
    expect(vm.state).toBe('paused');
    vm.resume();
    expect(vm.state).toBe('running');
    await vm.stop();
  });
});
