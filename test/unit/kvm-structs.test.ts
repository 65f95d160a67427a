import { describe, expect, it } from 'vitest';
import * as structs from '../../src/kvm/structs.js';
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

function probe(): Map<string, number> {
  const lines: string[] = [];
  for (const c of [...codecs, ...pvhCodecs]) {
    lines.push(`P("${c.name}", sizeof(struct ${c.name}));`);
    for (const field of Object.keys(c.fields)) lines.push(`P("${c.name}.${field}", offsetof(struct ${c.name}, ${field}));`);
  }
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

  it.each([...codecs, ...pvhCodecs].map((codec) => [codec.name, codec] as const))('%s: size and every field offset', (name, codec) => {
    expect(codec.size, `sizeof(struct ${name})`).toBe(c.get(name));
    for (const [field, [offset]] of Object.entries(codec.fields)) {
      expect(offset, `${name}.${field}`).toBe(c.get(`${name}.${field}`));
    }
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
