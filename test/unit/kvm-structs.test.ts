import { describe, expect, it } from 'vitest';
import * as structs from '../../src/kvm/structs.js';
import * as ioctls from '../../src/kvm/ioctls.js';
import { IOCTL_NAMES } from '../../src/kvm/ioctls.js';
import * as pvh from '../../src/boot/pvh.js';
import { runC } from '../helpers/c-program.js';

interface Layout {
  name: string;
  size: number;
  fields: Record<string, readonly [number, unknown]>;
}

const isLayout = (v: unknown): v is Layout => typeof v === 'object' && v !== null && 'fields' in v;
const codecs = Object.values(structs as Record<string, unknown>).filter(isLayout);
/** The PVH structures, checked against the C header the guests and the C benchmark use. */
const pvhCodecs = Object.values(pvh as Record<string, unknown>).filter(isLayout);

/** kvm_run's union members, as C expressions. */
const KVM_RUN_FIELDS: Record<string, string> = {
  request_interrupt_window: 'request_interrupt_window', immediate_exit: 'immediate_exit',
  exit_reason: 'exit_reason', ready_for_interrupt_injection: 'ready_for_interrupt_injection',
  if_flag: 'if_flag', flags: 'flags', cr8: 'cr8', apic_base: 'apic_base', exit: 'hw',
  io_direction: 'io.direction', io_size: 'io.size', io_port: 'io.port', io_count: 'io.count',
  io_data_offset: 'io.data_offset', mmio_phys_addr: 'mmio.phys_addr', mmio_data: 'mmio.data',
  mmio_len: 'mmio.len', mmio_is_write: 'mmio.is_write',
  fail_entry_hardware_entry_failure_reason: 'fail_entry.hardware_entry_failure_reason',
  fail_entry_cpu: 'fail_entry.cpu', internal_suberror: 'internal.suberror',
  internal_ndata: 'internal.ndata', internal_data: 'internal.data',
  system_event_type: 'system_event.type', system_event_ndata: 'system_event.ndata',
  system_event_data: 'system_event.data', hw_hardware_exit_reason: 'hw.hardware_exit_reason',
  ex_exception: 'ex.exception', ex_error_code: 'ex.error_code',
  kvm_valid_regs: 'kvm_valid_regs', kvm_dirty_regs: 'kvm_dirty_regs', s: 's',
};

/** Named constants from ioctls.ts, each checked against the #define of the same name. */
const CONSTANT_TABLES = ['KVM_CAP', 'KVM_MEM', 'KVM_EXIT', 'KVM_SYSTEM_EVENT', 'KVM_INTERNAL_ERROR', 'KVM_MP_STATE', 'KVM_IRQCHIP', 'KVM_CLOCK', 'KVM_VCPUEVENT'] as const;
const constants = CONSTANT_TABLES.flatMap((table) => Object.entries(ioctls[table] as Record<string, number>));
const STRUCT_CONSTANTS = { KVM_MAX_XCRS: structs.KVM_MAX_XCRS, KVM_IOAPIC_NUM_PINS: structs.KVM_IOAPIC_NUM_PINS };

/**
 * Every member of a structure as [C member path, offset, size], nested structures included
 * (kvm_sregs.cs.base, kvm_vcpu_events.exception.error_code): the C side answers for each path.
 */
function members(c: Layout, prefix = '', base = 0): [string, number, number][] {
  return Object.entries(c.fields).flatMap(([field, [offset, codec]]) => {
    const path = `${prefix}${field}`;
    const own: [string, number, number] = [path, base + offset, (codec as { size: number }).size];
    return isLayout(codec) ? [own, ...members(codec, `${path}.`, base + offset)] : [own];
  });
}

function probe(): Map<string, number> {
  const lines: string[] = [];
  for (const c of [...codecs, ...pvhCodecs]) {
    lines.push(`P("${c.name}", sizeof(struct ${c.name}));`);
    for (const [path] of members(c)) {
      lines.push(`P("${c.name}.${path}", offsetof(struct ${c.name}, ${path}));`);
      lines.push(`P("sizeof:${c.name}.${path}", sizeof(((struct ${c.name} *)0)->${path}));`);
    }
  }
  for (const [name] of [...constants, ...Object.entries(STRUCT_CONSTANTS)]) lines.push(`P("${name}", ${name});`);
  for (const [name, expr] of Object.entries(KVM_RUN_FIELDS)) lines.push(`P("kvm_run.${name}", offsetof(struct kvm_run, ${expr}));`);
  for (const name of IOCTL_NAMES.values()) lines.push(`P("${name}", (unsigned long)${name});`);
  const out = runC(`
#include <stddef.h>
#include <stdio.h>
#include <linux/kvm.h>
#include "${process.cwd()}/guests/lib/pvh-abi.h"
#define P(name, value) printf("%s %lu\\n", name, (unsigned long)(value))
int main(void) { ${lines.join('\n')} return 0; }
`);
  return new Map(out.trim().split('\n').map((l) => {
    const [k, v] = l.split(' ');
    return [k!, Number(v)];
  }));
}

describe('KVM and PVH structures match <linux/kvm.h> and guests/lib/pvh-abi.h', () => {
  const c = probe();

  it.each([...codecs, ...pvhCodecs].map((codec) => [codec.name, codec] as const))('%s: size, and every field\'s offset and size', (name, codec) => {
    expect(codec.size, `sizeof(struct ${name})`).toBe(c.get(name));
    for (const [path, offset, size] of members(codec)) {
      expect(offset, `offsetof ${name}.${path}`).toBe(c.get(`${name}.${path}`));
      expect(size, `sizeof ${name}.${path}`).toBe(c.get(`sizeof:${name}.${path}`));
    }
  });

  it('every constant (capabilities, memory slot flags, exit reasons, mp states, irqchip ids, clock and vCPU event flags)', () => {
    for (const [name, value] of [...constants, ...Object.entries(STRUCT_CONSTANTS)]) expect(value, name).toBe(c.get(name));
  });

  it('kvm_run offsets of the fields and exit members we decode', () => {
    for (const [name, offset] of Object.entries(structs.KVM_RUN_OFFSETS)) {
      expect(offset, `kvm_run.${name}`).toBe(c.get(`kvm_run.${name}`));
    }
  });

  it('every ioctl number', () => {
    for (const [value, name] of IOCTL_NAMES) expect(value, name).toBe(c.get(name));
  });
});

describe('the codecs a snapshot goes through cover every byte of their structure', () => {
  // vcpu-state.ts and vm-state.ts keep kernel bytes and decode them only to hand them to an
  // ioctl method: a byte no field covers would come back as zero, so the round trip must be exact.
  const stateCodecs: { name: string; size: number; decode(d: Uint8Array): unknown; encode(v: never): Uint8Array }[] = [
    structs.kvm_regs, structs.kvm_sregs, structs.kvm_xsave, structs.kvm_xcrs, structs.kvm_debugregs,
    structs.kvm_vcpu_events, structs.kvm_lapic_state, structs.kvm_msr_entry, structs.kvm_cpuid_entry2,
    structs.kvm_irqchip, structs.kvm_pit_state2, structs.kvm_clock_data,
  ];

  it.each(stateCodecs.map((codec) => [codec.name, codec] as const))('%s: decode → encode gives the same bytes', (_, codec) => {
    for (let seed = 1; seed <= 3; seed++) {
      const data = new Uint8Array(codec.size).map((_, i) => (i * 131 + seed * 977 + (i >> 3) * 17) & 0xff);
      expect(codec.encode(codec.decode(data) as never)).toEqual(data);
    }
  });
});
