// An interrupt line as a device sees it: raise or lower it. The VMM backs it with KVM_IRQ_LINE
// on the in-kernel PIC/IOAPIC; tests back it with a recorder.

export interface IrqLine {
  set(level: boolean): void;
}
