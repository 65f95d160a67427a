// What the VMM shows when a vCPU cannot go on: registers, segment state and the instruction
// bytes at RIP, so an emulation failure says which instruction rather than just "error".

import type { VcpuFd } from '../kvm/kvm.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { KvmRegs, KvmSegment, KvmSregs, KvmVcpuEvents } from '../kvm/structs.js';
import { CLOCK_EVERY, type TracedExit } from './exit-trace.js';

const h = (n: bigint, width = 16) => n.toString(16).padStart(width, '0');

export function formatRegisters(regs: KvmRegs, sregs: KvmSregs): string {
  const r = regs;
  const lines = [
    `rip=${h(r.rip)} rsp=${h(r.rsp)} rflags=${h(r.rflags, 8)}`,
    `rax=${h(r.rax)} rbx=${h(r.rbx)} rcx=${h(r.rcx)} rdx=${h(r.rdx)}`,
    `rsi=${h(r.rsi)} rdi=${h(r.rdi)} rbp=${h(r.rbp)}`,
    `r8=${h(r.r8)} r9=${h(r.r9)} r10=${h(r.r10)} r11=${h(r.r11)}`,
    `r12=${h(r.r12)} r13=${h(r.r13)} r14=${h(r.r14)} r15=${h(r.r15)}`,
    `cs=${h(BigInt(sregs.cs.selector), 4)} (cpl ${sregs.cs.selector & 3}, ${sregs.cs.l ? '64-bit' : sregs.cs.db ? '32-bit' : '16-bit'}) ss=${h(BigInt(sregs.ss.selector), 4)}`,
    `cr0=${h(sregs.cr0, 8)} cr2=${h(sregs.cr2)} cr3=${h(sregs.cr3)} cr4=${h(sregs.cr4, 8)} efer=${h(sregs.efer, 4)}`,
  ];
  return lines.join('\n');
}

const U64_MASK = (1n << 64n) - 1n;
const U32_MASK = (1n << 32n) - 1n;

/**
 * Up to 16 bytes at CS:RIP, translated through the guest's page tables; undefined if unmapped or
 * unreadable. RIP and CS's base are the guest's to choose: the sum is wrapped as the CPU wraps it
 * (64-bit code ignores the base; other code wraps at 4 GiB), so that a wild RIP reads nothing
 * rather than making KVM_TRANSLATE's argument overflow and the report throw.
 */
export function bytesAtRip(vcpu: VcpuFd, memory: GuestMemory, regs: KvmRegs, sregs: KvmSregs): Uint8Array | undefined {
  const linear = sregs.cs.l ? regs.rip & U64_MASK : (sregs.cs.base + regs.rip) & U32_MASK;
  let physical = linear;
  if (sregs.cr0 & (1n << 31n)) {
    try {
      const t = vcpu.translate(linear);
      if (!t.valid) return undefined;
      physical = t.physical_address;
    } catch {
      return undefined;
    }
  }
  const address = Number(physical);
  for (let n = 16; n > 0; n--) {
    if (memory.contains(address, n)) return memory.read(address, n);
  }
  return undefined;
}

/** A multi-line report for an error outcome; never throws (the vCPU may be in any state). */
export function vcpuReport(vcpu: VcpuFd, memory: GuestMemory): string {
  try {
    const regs = vcpu.getRegs();
    const sregs = vcpu.getSregs();
    const bytes = bytesAtRip(vcpu, memory, regs, sregs);
    const code = bytes ? [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ') : '(not in guest memory)';
    return `${formatRegisters(regs, sregs)}\ncode at rip: ${code}`;
  } catch (error) {
    return `registers unavailable: ${(error as Error).message}`;
  }
}

/**
 * One vCPU's state when its VM crashed (a triple fault, an internal error), as the outcome
 * carries it: registers, control and segment registers, the descriptor tables, the events KVM
 * had pending and the last exits it took. Numbers are hex strings, as a reader compares them.
 */
export interface VcpuDump {
  id: number;
  /** KVM_GET_MP_STATE: running, halted, or still waiting for INIT/SIPI (an AP never started). */
  mpState: string;
  regs: Record<string, string>;
  sregs: Record<string, string>;
  segments: Record<string, string>;
  /** KVM_GET_VCPU_EVENTS: an exception, interrupt or NMI being delivered or pending. */
  events: Record<string, string>;
  /** Up to 16 bytes at CS:RIP, or why there are none. */
  code: string;
  /**
   * Oldest first; times in ms of the VMM process's clock (comparable across vCPUs). A port access
   * or replayed write may carry an earlier exit's time (`after` > 0): see vmm/exit-trace.ts.
   */
  lastExits: TracedExit[];
  /** A part that could not be read (the vCPU may be in any state). */
  unavailable?: string;
  /** What a reader should know about these values (the registers of a vCPU KVM reset, ...). */
  note?: string;
}

const MP_STATES = ['runnable', 'uninitialized (waiting for INIT/SIPI)', 'init-received', 'halted', 'sipi-received'];

const hex = (n: bigint | number) => `0x${n.toString(16)}`;

function segment(s: KvmSegment): string {
  const kind = s.s ? (s.type & 8 ? 'code' : 'data') : 'system';
  return `sel=${hex(s.selector)} base=${hex(s.base)} limit=${hex(s.limit)} type=${s.type} ${kind} dpl=${s.dpl}`
    + `${s.present ? '' : ' not-present'}${s.unusable ? ' unusable' : ''}${s.l ? ' L' : ''}${s.db ? ' D' : ''}${s.g ? ' G' : ''}`;
}

function events(e: KvmVcpuEvents): Record<string, string> {
  const out: Record<string, string> = {};
  const x = e.exception;
  if (x.injected || x.pending) {
    out.exception = `vector ${x.nr}${x.injected ? ' injected' : ''}${x.pending ? ' pending' : ''}${x.has_error_code ? ` error ${hex(x.error_code)}` : ''}`
      + `${e.exception_has_payload ? ` payload ${hex(e.exception_payload)}` : ''}`;
  }
  if (e.interrupt.injected) out.interrupt = `vector ${e.interrupt.nr} injected${e.interrupt.soft ? ' (soft)' : ''}`;
  if (e.interrupt.shadow) out.interruptShadow = String(e.interrupt.shadow);
  out.nmi = `${e.nmi.injected ? 'injected ' : ''}${e.nmi.pending ? 'pending ' : ''}${e.nmi.masked ? 'masked' : 'unmasked'}`;
  if (e.smi.smm || e.smi.pending) out.smi = `smm=${e.smi.smm} pending=${e.smi.pending}`;
  if (e.smi.latched_init) out.latchedInit = '1';
  if (e.triple_fault.pending) out.tripleFault = 'pending';
  return out;
}

/** Reads one vCPU's state for a crash report; never throws. Call on the vCPU's own thread, outside KVM_RUN. */
export function vcpuDump(vcpu: VcpuFd, memory: GuestMemory, lastExits: TracedExit[]): VcpuDump {
  const dump: VcpuDump = { id: vcpu.id, mpState: '?', regs: {}, sregs: {}, segments: {}, events: {}, code: '', lastExits };
  const failed: string[] = [];
  const attempt = (what: string, read: () => void) => {
    try { read(); } catch (error) { failed.push(`${what}: ${(error as Error).message}`); }
  };
  attempt('mp state', () => {
    const state = vcpu.getMpState();
    dump.mpState = MP_STATES[state] ?? String(state);
  });
  let regs: KvmRegs | undefined;
  let sregs: KvmSregs | undefined;
  attempt('registers', () => {
    regs = vcpu.getRegs();
    for (const [name, value] of Object.entries(regs)) dump.regs[name] = hex(value);
  });
  attempt('special registers', () => {
    const s = vcpu.getSregs();
    sregs = s;
    Object.assign(dump.sregs, {
      cr0: hex(s.cr0), cr2: hex(s.cr2), cr3: hex(s.cr3), cr4: hex(s.cr4), cr8: hex(s.cr8), efer: hex(s.efer), apicBase: hex(s.apic_base),
      gdt: `${hex(s.gdt.base)}/${hex(s.gdt.limit)}`, idt: `${hex(s.idt.base)}/${hex(s.idt.limit)}`,
    });
    if (s.interrupt_bitmap.some((w) => w !== 0n)) dump.sregs.pendingInterrupts = s.interrupt_bitmap.map(hex).join(' ');
    for (const name of ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldt'] as const) dump.segments[name] = segment(s[name]);
  });
  attempt('events', () => { dump.events = events(vcpu.getVcpuEvents()); });
  if (regs && sregs) {
    const bytes = bytesAtRip(vcpu, memory, regs, sregs);
    dump.code = bytes ? [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ') : '(not in guest memory)';
  }
  if (failed.length) dump.unavailable = failed.join('; ');
  // KVM on AMD INITs a vCPU whose guest shut down (svm.c, shutdown_interception: the VMCB is
  // undefined after it), so the one that triple-faulted shows the reset state, not the fault's.
  if (regs?.rip === 0xfff0n && sregs?.cs.selector === 0xf000) {
    dump.note = 'these are the registers after INIT: KVM resets a vCPU whose guest shut down on AMD (SVM), so the state at the fault is lost; its last exits and the other vCPUs remain';
  }
  return dump;
}

/** A VcpuDump as lines for a person (the CLI without --json). */
export function formatVcpuDump(d: VcpuDump): string {
  const pairs = (record: Record<string, string>) => Object.entries(record).map(([k, v]) => `${k}=${v}`);
  const regs = pairs(d.regs);
  const lines = [
    `vCPU ${d.id}: ${d.mpState}`,
    ...Array.from({ length: Math.ceil(regs.length / 6) }, (_, i) => `  ${regs.slice(i * 6, i * 6 + 6).join(' ')}`),
    `  ${pairs(d.sregs).join(' ')}`,
    ...Object.entries(d.segments).map(([name, s]) => `  ${name}: ${s}`),
    `  events: ${pairs(d.events).join(', ') || 'none'}`,
    `  code at rip: ${d.code}`,
    ...(d.unavailable ? [`  unavailable: ${d.unavailable}`] : []),
    ...(d.note ? [`  note: ${d.note}`] : []),
    `  last ${d.lastExits.length} exits (+N: N lines after the last time read; port accesses read the clock only every ${CLOCK_EVERY}th):`,
    ...d.lastExits.map((e) => `    ${e.atMs.toFixed(3).padStart(12)} ms ${(e.after ? `+${e.after}` : '').padEnd(3)}  ${e.exit}`),
  ];
  return lines.join('\n');
}
