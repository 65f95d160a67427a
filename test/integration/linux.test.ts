// Boots a real Linux kernel, Debian's cloud bzImage, with the busybox initramfs of
// guests/initramfs to a shell, runs commands in it and powers it off.
//
// On tsvmm itself this needs hardware virtualization: under the nested KVM of the development
// machines a stock kernel does not boot (PLATFORM.md), so that test runs only where /proc/cpuinfo
// shows vmx or svm. Everywhere QEMU is installed, the same kernel also boots from the memory and
// entry state tsvmm builds, replayed under QEMU's software CPU (test/helpers/tcg-replay.ts): that
// checks tsvmm's boot-protocol set-up against a real kernel on any machine.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Vm } from 'tsvmm';
import { loadKernel } from '../../src/boot/loader.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { ramLayout } from '../../src/arch/x86/layout.js';
import { kvmMissingReason } from '../helpers/kvm.js';
import { fetchDebianKernel, FETCH_TIMEOUT_MS } from '../helpers/debian-kernel.js';
import { QemuConsole, qemuMissingReason, writeReplayElf } from '../helpers/tcg-replay.js';

const hardwareMissingReason: string | undefined = kvmMissingReason ?? (() => {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo) ? undefined
    : 'no VMX/SVM in /proc/cpuinfo: a stock Linux kernel cannot boot under this nested KVM (see PLATFORM.md); skipping';
})();
if (hardwareMissingReason) console.warn(`Linux on tsvmm: ${hardwareMissingReason}`);
const tcgMissingReason = qemuMissingReason();
if (tcgMissingReason) console.warn(`Linux replayed under QEMU TCG: ${tcgMissingReason}`);

const MEMORY = 512 * 2 ** 20;
const CMDLINE = 'console=ttyS0 reboot=k panic=1';
/** Early messages too, so that a replay that goes wrong shows how far the kernel got. */
const REPLAY_CMDLINE = `${CMDLINE} earlyprintk=serial,ttyS0,115200`;
const PROMPT = '(initramfs) ';
const BOOT_TIMEOUT_MS = 120_000;

async function testFiles(): Promise<{ kernel: string; initrd: string }> {
  const kernel = await fetchDebianKernel();
  const { stdout } = await promisify(execFile)('sh', ['guests/initramfs/build.sh'], { timeout: FETCH_TIMEOUT_MS });
  return { kernel, initrd: stdout.trim() };
}

/** Typed commands echo back, so each answer is checked by a line the command itself cannot echo. */
const ANSWER = 'echo "answer: $((6 * 7))"\r';
const ANSWER_LINE = /answer: 42\r?\n/;

describe.skipIf(hardwareMissingReason)('Linux on tsvmm (hardware virtualization)', () => {
  let files: { kernel: string; initrd: string };
  let vm: Vm | undefined;
  beforeAll(async () => { files = await testFiles(); }, FETCH_TIMEOUT_MS);
  afterEach(async () => { if (vm?.state !== 'exited') await vm?.stop(); });

  it('boots the Debian kernel with a busybox initramfs to a shell, runs commands, powers off', async () => {
    vm = Vm.boot({ kernel: files.kernel, initrd: files.initrd, cmdline: CMDLINE, memory: MEMORY, cpus: 1 });
    expect(vm.bootProtocol).toBe('bzImage');
    await vm.waitForOutput(PROMPT, BOOT_TIMEOUT_MS);
    expect(vm.output).toContain(`Command line: ${CMDLINE}`);
    expect(vm.output).toMatch(/tsvmm initramfs: Linux \S+ on x86_64/);
    vm.write(ANSWER);
    await vm.waitForOutput(ANSWER_LINE);
    vm.write('tty; cat /proc/cmdline\r');
    await vm.waitForOutput(/\/dev\/ttyS0\r?\n/);
    vm.write('poweroff -f\r'); // the kernel writes S5 to the PM1a control register of our FADT
    expect(await vm.wait()).toEqual({ kind: 'shutdown', reason: 'acpi-poweroff' });
  }, BOOT_TIMEOUT_MS + 60_000);
});

describe.skipIf(tcgMissingReason)('Linux from the memory and entry state tsvmm builds, replayed under QEMU TCG', () => {
  let files: { kernel: string; initrd: string };
  let qemu: QemuConsole | undefined;
  beforeAll(async () => { files = await testFiles(); }, FETCH_TIMEOUT_MS);
  afterEach(() => qemu?.kill());

  it('the Debian kernel reads our command line, e820 map and initrd, and boots to a working shell', async () => {
    const memory = GuestMemory.fromBuffers(ramLayout(MEMORY).map(({ start, size }) => ({ start, bytes: new Uint8Array(size) })));
    const loaded = loadKernel(memory, {
      kernelPath: files.kernel, kernel: readFileSync(files.kernel),
      initrdPath: files.initrd, initrd: readFileSync(files.initrd),
      cmdline: REPLAY_CMDLINE,
    });
    expect(loaded.protocol).toBe('bzImage');
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-tcg-'));
    qemu = new QemuConsole(writeReplayElf(memory, loaded.cpu, dir), MEMORY);

    // What the kernel read from our zero page shows in its first lines; check it before waiting
    // for the shell, so a broken zero page fails here and says how.
    await qemu.waitFor(/BIOS-e820: .*\r?\n\[[ \d.]+\] (?!BIOS-e820)/, BOOT_TIMEOUT_MS); // the line after the map
    expect(qemu.output).toContain(`Command line: ${REPLAY_CMDLINE}`);
    // The memory map is ours, not the one of the BIOS that QEMU runs.
    const e820 = [...qemu.output.matchAll(/BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)/g)].map((m) => m.slice(1));
    expect(e820).toEqual([
      ['0x0000000000000000', '0x000000000009fbff', 'usable'],
      ['0x000000000009fc00', '0x00000000000fffff', 'reserved'],
      ['0x0000000000100000', '0x000000001fffffff', 'usable'],
    ]);
    await qemu.waitFor(PROMPT, BOOT_TIMEOUT_MS);
    const { address, size } = loaded.initrd!;
    expect(qemu.output).toContain(`RAMDISK: [mem 0x${address.toString(16).padStart(8, '0')}-0x${(address + size - 1 | 0xfff).toString(16).padStart(8, '0')}]`);
    expect(qemu.output).toMatch(/tsvmm initramfs: Linux \S+ on x86_64/);

    qemu.write(ANSWER);
    await qemu.waitFor(ANSWER_LINE, 30_000);
    qemu.write('tty\r');
    await qemu.waitFor(/\/dev\/ttyS0\r?\n/, 30_000); // the shell owns the serial console: job control works
    qemu.write('exit\r');
    await qemu.waitFor('reboot: Power down', 30_000);
    expect(await qemu.exited).toBe(0);
  }, BOOT_TIMEOUT_MS + 60_000);
});
