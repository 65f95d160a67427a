// A script that dies with VMs running must still end: its vCPU threads sit in KVM_RUN on a halted
// guest and its I/O thread in epoll_wait, and Node joins every thread before the process exits.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';

describe.skipIf(kvmMissingReason)('a process that dies with VMs running', () => {
  it('ends promptly with its error instead of hanging on threads stuck in system calls', () => {
    const disk = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-crash-')), 'd.img');
    writeFileSync(disk, '');
    truncateSync(disk, 1 << 20);
    const script = `
      import { Vm } from ${JSON.stringify(path.resolve('dist/bundle/index.js'))};
      const vm = Vm.boot({ kernel: ${JSON.stringify(TEST_ELF)}, cmdline: 'mode=halt', memory: '32M', cpus: 2, rng: true, disks: [{ path: ${JSON.stringify(disk)} }] });
      await vm.waitForOutput('halt: now');
      setTimeout(() => { throw new Error('a bug in the script'); }, 50);`;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.signal, 'the process had to be killed: it hung').toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('a bug in the script');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
