// The VM-wide KVM state a snapshot needs besides its vCPUs: the in-kernel 8259 pair and IOAPIC,
// the PIT, and the kvmclock. Kept as kernel-structure bytes, like vcpu-state.ts, for the same
// reasons.

import { KVM_IRQCHIP } from './ioctls.js';
import type { VmFd } from './kvm.js';
import { kvm_clock_data, kvm_irqchip, kvm_pit_state2, type KvmClockData } from './structs.js';
import { KvmStateError } from './vcpu-state.js';

export interface VmSnapshot {
  /** struct kvm_irqchip, chip_id KVM_IRQCHIP_PIC_MASTER. */
  picMaster: Uint8Array;
  /** struct kvm_irqchip, chip_id KVM_IRQCHIP_PIC_SLAVE. */
  picSlave: Uint8Array;
  /** struct kvm_irqchip, chip_id KVM_IRQCHIP_IOAPIC. */
  ioapic: Uint8Array;
  /** struct kvm_pit_state2. */
  pit2: Uint8Array;
  /** struct kvm_clock_data as KVM_GET_CLOCK returned it (with the host's realtime where KVM gave it). */
  clock: Uint8Array;
}

const CHIPS = [
  ['picMaster', KVM_IRQCHIP.KVM_IRQCHIP_PIC_MASTER],
  ['picSlave', KVM_IRQCHIP.KVM_IRQCHIP_PIC_SLAVE],
  ['ioapic', KVM_IRQCHIP.KVM_IRQCHIP_IOAPIC],
] as const;

export function saveVm(vm: VmFd): VmSnapshot {
  const [picMaster, picSlave, ioapic] = CHIPS.map(([, id]) => kvm_irqchip.encode(vm.getIrqchip(id))) as [Uint8Array, Uint8Array, Uint8Array];
  return {
    picMaster, picSlave, ioapic,
    pit2: kvm_pit_state2.encode(vm.getPit2()),
    clock: kvm_clock_data.encode(vm.getClock()),
  };
}

/** Checks every field's type and length, and each irqchip's chip_id; throws a KvmStateError. */
export function checkVmSnapshot(snapshot: VmSnapshot): void {
  if (typeof snapshot !== 'object' || snapshot === null) throw new KvmStateError('vm', 'is not an object');
  const bytes = (field: keyof VmSnapshot, size: number, struct: string): Uint8Array => {
    const value = snapshot[field];
    if (!(value instanceof Uint8Array)) throw new KvmStateError(`vm: ${field}`, 'is not a byte array');
    if (value.length !== size) throw new KvmStateError(`vm: ${field}`, `has ${value.length} bytes, ${struct} is ${size}`);
    return value;
  };
  for (const [field, id] of CHIPS) {
    const chipId = kvm_irqchip.decode(bytes(field, kvm_irqchip.size, 'kvm_irqchip')).chip_id;
    // A controller saved under the wrong name would be loaded into the wrong chip.
    if (chipId !== id) throw new KvmStateError(`vm: ${field}`, `holds chip_id ${chipId}, expected ${id}`);
  }
  bytes('pit2', kvm_pit_state2.size, 'kvm_pit_state2');
  bytes('clock', kvm_clock_data.size, 'kvm_clock_data');
}

/**
 * The kvm_clock_data to hand KVM_SET_CLOCK for a saved clock: the guest's kvmclock resumes at the
 * value it had when saved, as if the VM had only been paused. It neither steps back nor jumps over
 * the time the VM spent saved; the guest TSC, restored from its MSR, resumes the same way, so the
 * two stay in step. The flags KVM_GET_CLOCK returned must not go back as they are: with
 * KVM_CLOCK_REALTIME among them (given where the host clocksource is the TSC), KVM_SET_CLOCK adds
 * all the wall-clock time since the save. Kernels before 5.16 refuse any flag at all.
 */
export function clockForRestore(saved: KvmClockData): KvmClockData {
  return { ...saved, flags: 0 };
}

/**
 * Restores into a fresh VM that has its irqchip and PIT created (as the builder does). Order:
 * the interrupt controllers first, so that a PIT tick after KVM_SET_PIT2 lands in the restored
 * ones instead of being overwritten by them; the clock last, as the vCPUs are about to run,
 * because kvmclock runs from the moment it is set. Call it after restoring the vCPUs.
 */
export function restoreVm(vm: VmFd, snapshot: VmSnapshot): void {
  checkVmSnapshot(snapshot);
  const clock = clockForRestore(kvm_clock_data.decode(snapshot.clock));
  for (const [field] of CHIPS) vm.setIrqchip(kvm_irqchip.decode(snapshot[field]));
  vm.setPit2(kvm_pit_state2.decode(snapshot.pit2));
  vm.setClock(clock);
}
