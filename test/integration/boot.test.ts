// Boots every test guest on the real /dev/kvm through the library API.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Vm } from 'tsvmm';
import { ELF64_ELF, HELLO_ELF, kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';

const testGuest = (cmdline: string, extra: Parameters<typeof Vm.boot>[0] = {}) =>
  Vm.boot({ kernel: TEST_ELF, cmdline, memory: '64M', ...extra });

describe.skipIf(kvmMissingReason)('booting guests on /dev/kvm', () => {
  it('PVH entry: hvm_start_info carries the command line, memory map and initrd module', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-'));
    const initrd = Buffer.alloc(10_000);
    for (let i = 0; i < initrd.length; i++) initrd[i] = (i * 7) & 0xff;
    writeFileSync(path.join(dir, 'initrd'), initrd);
    const sum = initrd.reduce((a, b) => (a + b) >>> 0, 0);

    const vm = testGuest('mode=info extra=words', { initrd: path.join(dir, 'initrd') });
    expect(vm.bootProtocol).toBe('PVH ELF');
    expect(await vm.wait()).toEqual({ kind: 'shutdown', reason: 'i8042-reset' });
    expect(vm.output).toContain('info: magic=0x336ec578 version=0x1 cmdline="mode=info extra=words" modules=0x1');
    expect(vm.output).toMatch(new RegExp(`module: addr=0x[0-9a-f]+ size=0x${initrd.length.toString(16)} sum=0x${sum.toString(16)}\\b`));
    expect(vm.output).toContain('memmap: addr=0x100000 size=0x3f00000 type=0x1');
    expect(vm.output).toContain('info: cpl=0');
    // Each console byte costs one exit (the LSR poll before it): KVM queues the THR writes, which
    // reach the output all the same (kvm/coalesced-ring.ts).
    expect(vm.stats.io).toBeLessThan(1.2 * vm.output.length);
  });

  it('plain ELF64 entry: long mode at CPL 0 with a Linux zero page in rsi', async () => {
    const vm = Vm.boot({ kernel: ELF64_ELF, cmdline: 'zero page says hi', memory: '64M' });
    expect(vm.bootProtocol).toBe('ELF64');
    expect((await vm.wait()).kind).toBe('shutdown');
    expect(vm.output).toContain('elf64: cmdline="zero page says hi"');
    expect(vm.output).toContain('e820: addr=0x100000 size=0x3f00000 type=0x1');
    expect(vm.output).toContain('elf64: cpl=0');
  });

  it('port-I/O exits reach the VMM and are counted', async () => {
    const vm = testGuest('mode=exits count=2000');
    await vm.wait();
    expect(vm.output).toContain('exits: done 2000');
    expect(vm.stats.io).toBeGreaterThan(2000);
  });

  it('a triple fault ends the VM cleanly, with every vCPU\'s state in the outcome', async () => {
    const vm = testGuest('mode=triple-fault', { cpus: 2 });
    const outcome = await vm.wait();
    expect(outcome).toMatchObject({ kind: 'shutdown', reason: 'triple-fault' });
    expect(vm.output).toContain('triple-fault: now');
    if (outcome.kind !== 'shutdown') return;
    const [boot, ap] = outcome.vcpus ?? [];
    expect(boot).toMatchObject({ id: 0, regs: { rip: expect.stringMatching(/^0x[0-9a-f]+$/) }, sregs: { cr0: expect.stringMatching(/^0x/), efer: expect.stringMatching(/^0x/) } });
    expect(boot!.segments.cs).toMatch(/^sel=0x8 .* code dpl=0/);
    expect(boot!.unavailable).toBeUndefined();
    // The console line before the fault went out through COM1's data port; the fault is the last exit.
    const exits = boot!.lastExits.map((e) => e.exit);
    expect(exits).toContain('io write 0x3f8 1 = 0xa');
    expect(exits.at(-1)).toBe('shutdown');
    expect(boot!.lastExits.every((e, i, all) => i === 0 || e.atMs >= all[i - 1]!.atMs)).toBe(true);
    // The AP was never started: the report says so rather than showing garbage registers.
    expect(ap).toMatchObject({ id: 1, mpState: expect.stringMatching(/^uninitialized/) });
  });

  it('an emulation failure ends the VM with the registers and the bytes at RIP', async () => {
    const vm = testGuest('mode=emulation-failure');
    const outcome = await vm.wait();
    expect(outcome.kind).toBe('error');
    if (outcome.kind !== 'error') return;
    expect(outcome.code).toBe('EMULATION_FAILURE');
    expect(outcome.message).toMatch(/could not emulate/);
    expect(outcome.diagnostics).toMatch(/rip=0000000000[0-9a-f]{6}/);
    expect(outcome.diagnostics).toContain('cs=0008 (cpl 0, 64-bit)');
    expect(outcome.diagnostics).toMatch(/code at rip: f0 48 0f c7/); // lock cmpxchg16b
  });

  it('unassigned MMIO reads all ones, writes outside RAM are dropped, and the VM goes on', async () => {
    const vm = testGuest('mode=mmio');
    expect((await vm.wait()).kind).toBe('shutdown');
    expect(vm.output).toContain('mmio: read=0xffffffff');
    expect(vm.output).toContain('mmio: survived');
    expect(vm.stats.unclaimed).toBeGreaterThanOrEqual(3);
  });

  it('runs guest code at CPL 3 and comes back', async () => {
    const vm = testGuest('mode=cpl3 loops=1000000');
    await vm.wait();
    expect(vm.output).toMatch(/cpl3: cs=0x23 result=0x[0-9a-f]+/);
  });

  it.each(['halt', 'spin'])('stops a guest at once even while it is in KVM_RUN (%s)', async (mode) => {
    const vm = testGuest(`mode=${mode}`);
    await vm.waitForOutput(`${mode}: now`);
    const started = performance.now();
    expect(await vm.stop()).toEqual({ kind: 'stopped' });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(vm.state).toBe('exited');
  });

  it('pauses and resumes a running guest', async () => {
    const vm = testGuest('mode=spin');
    await vm.waitForOutput('spin: now');
    await vm.pause();
    expect(vm.state).toBe('paused');
    vm.resume();
    expect(vm.state).toBe('running');
    await vm.stop();
  });

  it('the demo guest greets, computes at CPL 3, echoes input and shuts down when asked', async () => {
    const vm = Vm.boot({ kernel: HELLO_ELF, memory: '64M' });
    await vm.waitForOutput('type something');
    expect(vm.output).toContain('running at CPL 0');
    expect(vm.output).toMatch(/cs=0x23/);
    vm.write('hi there\r');
    await vm.waitForOutput('you typed "hi there"');
    vm.write('exit\r');
    expect(await vm.wait()).toEqual({ kind: 'shutdown', reason: 'i8042-reset' });
  });

  it('boots with several vCPUs (the APs wait for INIT/SIPI) and more RAM than fits below the PCI hole', async () => {
    const vm = testGuest('mode=info', { cpus: 2, memory: '4G' });
    expect((await vm.wait()).kind).toBe('shutdown');
    expect(vm.output).toContain('memmap: addr=0x100000 size=0xbff00000 type=0x1');
    expect(vm.output).toContain('memmap: addr=0x100000000 size=0x40000000 type=0x1');
  });

  it('refuses bad input before touching KVM and leaves nothing running', () => {
    expect(() => Vm.create({ kernel: '/nonexistent/kernel' })).toThrow('kernel /nonexistent/kernel: no such file');
    expect(() => Vm.create({ kernel: TEST_ELF, memory: 'lots' })).toThrow(/^memory "lots": not a size/);
  });
});
