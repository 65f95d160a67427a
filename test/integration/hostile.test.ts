// A hostile guest on /dev/kvm (guests/build/hostile.elf): wild values at every access size to
// every port and MMIO register of every emulated device, QueueSel = 0x80000000 followed by every
// virtio register, live queues over random bytes and at wild addresses, reads and writes at
// thousands of unassigned addresses. The VMM must not end, crash or log without bound; the guest
// proves it still runs, and a virtio device it broke works again after a reset.

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Vm } from 'tsvmm';
import { GUESTS, kvmMissingReason } from '../helpers/kvm.js';

const HOSTILE_ELF = path.join(GUESTS, 'hostile.elf');
const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(kvmMissingReason)('a hostile guest', () => {
  it.each([1])('writes wild values to every device (seed %i) and the VM goes on, with bounded logs', async (seed) => {
    const disk = path.join(dir, `disk${seed}.img`);
    writeFileSync(disk, '');
    truncateSync(disk, 1024 * 1024);
    const vm = Vm.boot({
      kernel: HOSTILE_ELF, memory: '64M', cmdline: `seed=${seed}`,
      disks: [{ path: disk }], rng: true, console: 'virtio',
    });
    const logs: string[] = [];
    vm.on('log', (message) => logs.push(message));
    const outcome = await vm.wait();
    const output = vm.output;
    expect(outcome, output).toEqual({ kind: 'shutdown', reason: 'i8042-reset' });
    for (const kind of ['blk', 'rng', 'console']) expect(output).toMatch(new RegExp(`hostile: virtio ${kind} at 0x[0-9a-f]+ done`));
    expect(output).toMatch(/hostile: still running after \d+ accesses/);
    expect(output).toContain('hostile: rng after reset: 64 bytes');
    // Tens of thousands of accesses nobody claims, at thousands of addresses: counted, and only
    // the first few kinds logged (FaultLog), so neither the log nor the VMM's memory grows with them.
    expect(vm.stats.unclaimed).toBeGreaterThan(5000);
    expect(logs.length, logs.join('\n')).toBeLessThan(80);
    expect(logs.filter((l) => /unassigned/.test(l)).length).toBeLessThanOrEqual(33);
    // The broken rings were the guest's doing: each device says so once, and counts the rest.
    expect(logs.filter((l) => /the device failed/.test(l))).toEqual([]);
    expect(vm.stats.faults).toBeGreaterThan(0);
  }, 120_000);
});
