// Saving and restoring the KVM state of a VM on the real /dev/kvm: VM A's state, restored into a
// fresh VM B and saved again, must come back byte for byte, apart from what KVM advances by
// itself; and a guest stopped in the middle of a computation in A must finish it in B.

import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from '../../src/kvm/addon.js';
import { KVM_CLOCK, KVM_MP_STATE, KVM_VCPUEVENT } from '../../src/kvm/ioctls.js';
import type { VcpuFd } from '../../src/kvm/kvm.js';
import { kvm_clock_data, kvm_pic_state, kvm_pit_state2, kvm_ioapic_state } from '../../src/kvm/structs.js';
import {
  completePendingIo, MSR_IA32_TSC, restoreVcpu, saveVcpu, snapshotMsrs, snapshotRegs, snapshotSregs, vcpuMsrIndices,
  type VcpuSnapshot,
} from '../../src/kvm/vcpu-state.js';
import { restoreVm, saveVm, type VmSnapshot } from '../../src/kvm/vm-state.js';
import { buildVm, type BuiltVm } from '../../src/vmm/builder.js';
import { resolveConfig } from '../../src/vmm/config.js';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { CoalescedRing } from '../../src/kvm/coalesced-ring.js';

const built: BuiltVm[] = [];
const build = (cmdline: string, cpus = 1): BuiltVm => {
  const vm = buildVm(resolveConfig({ kernel: TEST_ELF, cmdline, memory: '64M', cpus }));
  built.push(vm);
  vm.memoryReady(); // its vCPUs run here, not through Vm.start
  return vm;
};
afterEach(() => {
  for (const vm of built.splice(0)) vm.release();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const VCPU_FIELDS = ['cpuid', 'regs', 'sregs', 'xsave', 'xcrs', 'debugregs', 'lapic', 'msrs', 'vcpuEvents'] as const;

/** Byte offsets where two blobs differ. */
function differences(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

function patch(bytes: Uint8Array, offset: number, value: number | bigint, size: 4 | 8): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 4) view.setUint32(offset, Number(value), true);
  else view.setBigUint64(offset, BigInt(value), true);
}

/** Puts non-default values in every piece of state a snapshot carries, through the ioctls. */
function setDistinctState(a: BuiltVm): void {
  const [bsp, ap] = a.vcpus as [VcpuFd, VcpuFd];

  const regs = bsp.getRegs();
  bsp.setRegs({ ...regs, rax: 0x1111_2222_3333_4444n, r15: 0xfedc_ba98_7654_3210n, rsp: 0x8_0000n });
  const sregs = bsp.getSregs();
  bsp.setSregs({ ...sregs, cr2: 0xdead_b000n });
  bsp.setMsrs([
    { index: 0xc0000081, reserved: 0, data: 0x0023_0010_0000_0000n }, // STAR
    { index: 0xc0000082, reserved: 0, data: 0xffff_ffff_8100_0000n }, // LSTAR
    { index: 0xc0000084, reserved: 0, data: 0x4_7700n }, // SYSCALL_MASK
    { index: 0xc0000102, reserved: 0, data: 0x12_3000n }, // KERNEL_GS_BASE
    { index: 0x277, reserved: 0, data: 0x0007_0106_0007_0106n }, // PAT
    { index: 0x4b564d01, reserved: 0, data: 0x9000n | 1n }, // MSR_KVM_SYSTEM_TIME_NEW: kvmclock on
    { index: 0x200, reserved: 0, data: 0x8000_0006n }, // MTRR physbase 0: not in KVM's index list
    { index: 0x401, reserved: 0, data: 0n }, // MC0_STATUS
  ]);
  const lapic = bsp.getLapic();
  patch(lapic, 0x80, 0x20, 4); // TPR
  patch(lapic, 0xf0, 0x1ff, 4); // SVR: enabled, spurious vector 0xff
  patch(lapic, 0x320, 0x1_00ec, 4); // LVTT: masked, vector 0xec
  bsp.setLapic(lapic);

  const xcrs = bsp.getXcrs();
  xcrs.xcrs[0] = { ...xcrs.xcrs[0]!, xcr: 0, value: 3n }; // x87 | SSE
  bsp.setXcrs({ ...xcrs, nr_xcrs: Math.max(xcrs.nr_xcrs, 1) });
  const xsave = bsp.getXsave();
  patch(xsave, 24, 0x1fa0, 4); // MXCSR
  for (let i = 0; i < 16; i++) xsave[160 + i] = 0xa0 + i; // XMM0
  xsave[512]! |= 3; // XSTATE_BV: x87 and SSE state present
  bsp.setXsave(xsave);
  const debugregs = bsp.getDebugregs();
  bsp.setDebugregs({ ...debugregs, db: [0x4000n, 0x5000n, 0n, 0n], dr7: 0x401n });
  const events = bsp.getVcpuEvents();
  bsp.setVcpuEvents({
    ...events, nmi: { ...events.nmi, masked: 1 },
    flags: KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_SHADOW,
  });
  bsp.setMpState(KVM_MP_STATE.KVM_MP_STATE_HALTED);
  // The AP is left as the builder made it: waiting for INIT/SIPI, as an AP that never started.
  expect(ap.getMpState()).toBe(KVM_MP_STATE.KVM_MP_STATE_UNINITIALIZED);

  const master = a.vm.getIrqchip(0);
  const pic = kvm_pic_state.decode(master.chip);
  master.chip.set(kvm_pic_state.encode({ ...pic, irq_base: 0x20, imr: 0xf8, elcr: 0x08 }));
  a.vm.setIrqchip(master);
  const slave = a.vm.getIrqchip(1);
  slave.chip.set(kvm_pic_state.encode({ ...kvm_pic_state.decode(slave.chip), irq_base: 0x28, imr: 0xff }));
  a.vm.setIrqchip(slave);
  const ioapic = a.vm.getIrqchip(2);
  const io = kvm_ioapic_state.decode(ioapic.chip);
  io.redirtbl[4] = 0x24n; // COM1: vector 0x24, edge, unmasked
  io.redirtbl[9] = 0x29n | (1n << 15n) | (1n << 16n) | (1n << 56n); // level, masked, to APIC 1
  ioapic.chip.set(kvm_ioapic_state.encode(io));
  a.vm.setIrqchip(ioapic);
  // Channel 2 (the speaker's, gate low): a programmed counter that raises no interrupt.
  const pit = a.vm.getPit2();
  pit.channels[2] = { ...pit.channels[2]!, count: 0x1234, mode: 3, rw_mode: 3, gate: 0 };
  a.vm.setPit2(pit);
  a.vm.setClock({ ...kvm_clock_data.zero(), clock: 5_000_000_000n });
}

function saveAll(vm: BuiltVm): { vcpus: VcpuSnapshot[]; vm: VmSnapshot } {
  const indices = vcpuMsrIndices(vm.kvm, vm.vcpus[0]!);
  const xsaveSize = vm.vm.xsaveSize();
  return { vcpus: vm.vcpus.map((v) => saveVcpu(v, indices, { xsaveSize })), vm: saveVm(vm.vm) };
}

describe.skipIf(kvmMissingReason)('KVM state on /dev/kvm', () => {
  it('round trip: A → snapshot → fresh B → snapshot gives the same bytes, apart from what KVM advances', async () => {
    const tscWritable = hostHonoursTscWrites(build('mode=halt'));
    if (!tscWritable) console.warn('this KVM ignores writes to IA32_TSC (guest TSC = host TSC): TSC continuity not checked');
    const a = build('mode=halt', 2);
    setDistinctState(a);
    const first = saveAll(a);
    // Each MSR asked for is saved or noted as refused (none is, on the development machines).
    const asked = vcpuMsrIndices(a.kvm, a.vcpus[0]!);
    for (const snapshot of first.vcpus) {
      expect([...snapshotMsrs(snapshot).map((e) => e.index), ...snapshot.skippedMsrs].sort()).toEqual([...asked].sort());
    }
    expect(snapshotMsrs(first.vcpus[0]!).map((e) => e.index)).toContain(0x200); // an MTRR, beyond KVM's index list

    // The VM stays saved for a while: neither its TSC nor its kvmclock may count that time.
    const savedFor = 300;
    await sleep(savedFor);
    const tscDrift = readTsc(a.vcpus[0]!) - msr(first.vcpus[0]!, MSR_IA32_TSC);
    const clockDrift = a.vm.getClock().clock - kvm_clock_data.decode(first.vm.clock).clock;
    expect(clockDrift).toBeGreaterThanOrEqual(BigInt(savedFor) * 1_000_000n);

    const b = build('mode=halt', 2);
    expect(b.vcpus.map((v) => restoreVcpu(v, first.vcpus[v.id]!, { xsaveSize: b.vm.xsaveSize() }))).toEqual([
      { guestNotified: true }, // the BSP has kvmclock on (MSR_KVM_SYSTEM_TIME_NEW above)
      { guestNotified: false }, // the AP never enabled it
    ]);
    restoreVm(b.vm, first.vm);
    const second = saveAll(b);

    for (const [i, before] of first.vcpus.entries()) {
      const after = second.vcpus[i]!;
      expect(after.mpState).toBe(before.mpState);
      for (const field of VCPU_FIELDS) {
        if (field === 'msrs') continue;
        expect(differences(before[field], after[field]), `vcpu ${i}: ${field}`).toEqual([]);
      }
      // Every MSR comes back, but the TSC, which ran between restore and the second save.
      const msrsBefore = snapshotMsrs(before);
      const msrsAfter = snapshotMsrs(after);
      expect(msrsAfter.map((e) => e.index)).toEqual(msrsBefore.map((e) => e.index));
      expect(msrsAfter.filter((e, j) => e.data !== msrsBefore[j]!.data).map((e) => e.index)).toEqual(
        msrsAfter.some((e, j) => e.index === MSR_IA32_TSC && e.data !== msrsBefore[j]!.data) ? [MSR_IA32_TSC] : [],
      );
      const tscAdvance = msr(after, MSR_IA32_TSC) - msr(before, MSR_IA32_TSC);
      expect(tscAdvance).toBeGreaterThanOrEqual(0n);
      if (tscWritable) expect(tscAdvance, 'the TSC resumes where it was, not where it would be had it run on').toBeLessThan(tscDrift / 2n);
    }
    expect(snapshotRegs(second.vcpus[0]!).rax).toBe(0x1111_2222_3333_4444n);
    expect(snapshotSregs(second.vcpus[0]!).cr2).toBe(0xdead_b000n);
    expect(second.vcpus.map((v) => v.mpState)).toEqual([KVM_MP_STATE.KVM_MP_STATE_HALTED, KVM_MP_STATE.KVM_MP_STATE_UNINITIALIZED]);

    for (const field of ['picMaster', 'picSlave', 'ioapic'] as const) {
      expect(differences(first.vm[field], second.vm[field]), field).toEqual([]);
    }
    // The PIT restarts each channel from its count when loaded, and stamps that instant.
    const pitBefore = kvm_pit_state2.decode(first.vm.pit2);
    const pitAfter = kvm_pit_state2.decode(second.vm.pit2);
    expect(pitAfter.channels.map(({ count_load_time: _, ...c }) => c)).toEqual(pitBefore.channels.map(({ count_load_time: _, ...c }) => c));
    expect({ ...pitAfter, channels: [] }).toEqual({ ...pitBefore, channels: [] });
    expect(pitAfter.channels[2]).toMatchObject({ count: 0x1234, mode: 3 });
    // kvmclock resumes at the saved value: forwards only by the time since the restore.
    const clockBefore = kvm_clock_data.decode(first.vm.clock);
    const clockAfter = kvm_clock_data.decode(second.vm.clock);
    expect(clockAfter.clock).toBeGreaterThanOrEqual(clockBefore.clock);
    expect(clockAfter.clock - clockBefore.clock).toBeLessThan(clockDrift / 2n);
    expect(clockAfter.flags & ~(KVM_CLOCK.KVM_CLOCK_TSC_STABLE | KVM_CLOCK.KVM_CLOCK_REALTIME | KVM_CLOCK.KVM_CLOCK_HOST_TSC)).toBe(0);
  });

  it('a guest stopped mid-computation at CPL 3 in VM A finishes it in VM B, with the result A gets', async () => {
    const loops = 600_000_000n;
    const cmdline = `mode=cpl3 loops=${loops}`;
    const a = build(cmdline);
    // Run A until it is inside the CPL-3 loop, which makes no exits: a kicker thread's signals
    // bring it back out of KVM_RUN.
    const stop = await withKicker(() => runGuest(a, () => (a.vcpus[0]!.getSregs().cs.selector & 3) === 3));
    expect(stop.reason, 'A reached CPL 3 before it finished').toBe('stopped');
    expect(stop.output).toBe('');
    const saved = saveAll(a);
    expect(snapshotSregs(saved.vcpus[0]!).cs.selector & 3).toBe(3);

    const b = restoredCopy(a, cmdline, saved);

    const expected = `cpl3: cs=0x23 result=0x${lcg(loops).toString(16)}\n`;
    const inB = runGuest(b);
    expect(inB).toEqual({ reason: 'shutdown', output: expected });
    const inA = runGuest(a);
    expect(inA).toEqual({ reason: 'shutdown', output: expected });
  });

  it('stopped at a port-I/O exit, the IN is completed before the save, and B goes on after it', () => {
    const cmdline = 'mode=cpl3 loops=1000';
    const expected = 'cpl3: cs=0x23 result=0xc861315d1e44e08\n';
    const a = build(cmdline);
    // Stop at the exit for the LSR read before the 6th character: KVM holds that IN open, with
    // RIP still on it, until the next KVM_RUN stores the value we answered.
    const run = a.vcpus[0]!.kvmRun;
    let output = '';
    const stop = runGuest(a, () => run.isSingleIo && !run.ioIsWrite && run.ioPort === 0x3fd && output.length === 5, (o) => { output = o; });
    expect(stop).toEqual({ reason: 'stopped', output: expected.slice(0, 5) });
    const vcpu = a.vcpus[0]!;
    const atExit = vcpu.getRegs();
    expect(a.memory.readU8(Number(atExit.rip)), 'RIP on the IN (in al, dx)').toBe(0xec);
    completePendingIo(vcpu);
    const completed = vcpu.getRegs();
    expect(completed.rip).toBe(atExit.rip + 1n);
    expect(completed.rax & 0xffn).toBe(BigInt(LSR_READY));
    const b = restoredCopy(a, cmdline, saveAll(a));
    expect(snapshotRegs(saveVcpu(b.vcpus[0]!, [])).rip).toBe(completed.rip);
    expect(runGuest(b)).toEqual({ reason: 'shutdown', output: expected.slice(5) });
  });
});

/** Builds B from A's memory and A's saved state; the boot path is made to fault, so B cannot start over. */
function restoredCopy(a: BuiltVm, cmdline: string, saved: { vcpus: VcpuSnapshot[]; vm: VmSnapshot }): BuiltVm {
  const b = build(cmdline);
  // Guest memory is the VMM's to save (src/snapshot); here a copy stands in for it.
  expect(b.memory.descriptors.map(({ start, size }) => [start, size])).toEqual(a.memory.descriptors.map(({ start, size }) => [start, size]));
  a.memory.regions.forEach((region, i) => b.memory.regions[i]!.bytes.set(region.bytes));
  // ud2 at the entry point: a B that started over instead of going on where A stopped would end
  // in a triple fault instead of printing the same output.
  b.memory.write(b.kernel.cpu.entry, Uint8Array.of(0x0f, 0x0b));
  for (const v of b.vcpus) restoreVcpu(v, saved.vcpus[v.id]!, { xsaveSize: b.vm.xsaveSize() });
  restoreVm(b.vm, saved.vm);
  return b;
}

function msr(snapshot: VcpuSnapshot, index: number): bigint {
  const entry = snapshotMsrs(snapshot).find((e) => e.index === index);
  if (!entry) throw new Error(`MSR 0x${index.toString(16)} not in the snapshot`);
  return entry.data;
}

/**
 * Whether KVM can give a guest a TSC of our choosing. The nested KVM of the development machines
 * cannot (its guests read the host's TSC), so a restored TSC goes on from the host's value.
 */
function hostHonoursTscWrites(scratch: BuiltVm): boolean {
  const vcpu = scratch.vcpus[0]!;
  vcpu.setMsrs([{ index: MSR_IA32_TSC, reserved: 0, data: 1_000_000n }]);
  return readTsc(vcpu) < 1_000_000n + 100_000_000_000n;
}

function readTsc(vcpu: VcpuFd): bigint {
  return vcpu.getMsrs([MSR_IA32_TSC])[0]!.data;
}

/** test.elf's CPL-3 result: n steps of x = a·x + c (mod 2^64) from 0, by squaring the affine map. */
function lcg(n: bigint): bigint {
  const mod = (x: bigint) => BigInt.asUintN(64, x);
  let [a, c] = [6364136223846793005n, 1442695040888963407n];
  let [ra, rc] = [1n, 0n];
  for (; n > 0n; n >>= 1n) {
    if (n & 1n) [ra, rc] = [mod(a * ra), mod(a * rc + c)];
    [a, c] = [mod(a * a), mod(a * c + c)];
  }
  return rc;
}

interface GuestRun {
  reason: 'shutdown' | 'stopped';
  output: string;
}

/** What the guest reads from COM1's line status register: transmitter empty, ready for a byte. */
const LSR_READY = 0x60;

/**
 * The little of a VMM test.elf needs, on this thread: COM1 output, the i8042 reset that ends
 * it, unassigned ports and MMIO. `stopWhen` is asked after every exit.
 */

function runGuest(vm: BuiltVm, stopWhen: () => boolean = () => false, onOutput?: (output: string) => void): GuestRun {
  const vcpu = vm.vcpus[0]!;
  const run = vcpu.kvmRun;
  // The builder queues COM1's transmit writes in KVM's coalesced ring (where KVM can): replay
  // them before each exit, as the vCPU loop does, so the output stays in the guest's order.
  const ring = vm.coalescedRingPage === undefined ? undefined : new CoalescedRing(run.bytes.buffer as ArrayBuffer, vm.coalescedRingPage);
  let output = '';
  const replay = (isPio: boolean, address: number, data: Uint8Array) => {
    if (isPio && address === 0x3f8) output += String.fromCharCode(...data);
  };
  for (let i = 0; i < 1_000_000; i++) {
    const exit = run.decode(vcpu.run());
    if (ring?.pending) {
      ring.drain(replay);
      onOutput?.(output);
    }
    if (exit.kind === 'io') {
      const data = run.ioData(exit);
      if (exit.write && exit.port === 0x3f8) {
        output += String.fromCharCode(...data);
        onOutput?.(output);
      } else if (exit.write && exit.port === 0x64 && data[0] === 0xfe) return { reason: 'shutdown', output };
      else if (!exit.write) data.fill(exit.port === 0x3fd ? LSR_READY : 0xff);
    } else if (exit.kind === 'mmio') {
      if (!exit.write) run.mmioData(exit.length).fill(0xff);
    } else if (exit.kind !== 'interrupted') {
      throw new Error(`unexpected exit ${JSON.stringify(exit, (_, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))} after "${output}"`);
    }
    if (stopWhen()) return { reason: 'stopped', output };
  }
  throw new Error(`the guest did not finish: "${output}"`);
}

const KICK_SIGNAL = 41;

/**
 * Runs `body` while a worker thread signals this one every few milliseconds, so a KVM_RUN that
 * would make no exit returns EINTR. A signal that lands outside KVM_RUN finds an empty handler.
 */
async function withKicker<T>(body: () => T): Promise<T> {
  expect(addon().installEmptySignalHandler(KICK_SIGNAL)).toBe(0);
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const { workerData } = require('node:worker_threads');
    const native = require(workerData.addon);
    const flag = workerData.flag;
    Atomics.store(flag, 0, 1);
    while (Atomics.load(flag, 0) === 1) {
      native.threadKill(workerData.thread, workerData.signal);
      Atomics.wait(flag, 0, 1, 5);
    }
  `, {
    eval: true,
    workerData: { addon: path.resolve('build/Release/tsvmm.node'), thread: addon().threadSelf(), signal: KICK_SIGNAL, flag },
  });
  try {
    while (Atomics.load(flag, 0) === 0) await sleep(1);
    return body();
  } finally {
    Atomics.store(flag, 0, 2);
    Atomics.notify(flag, 0);
    await worker.terminate();
  }
}
