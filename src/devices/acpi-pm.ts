// The ACPI fixed-hardware registers named by our FADT (arch/x86/acpi.ts): the PM1a event block,
// the PM1a control block, where the guest's `poweroff` writes SLP_TYP=S5 with SLP_EN, and the
// reset register, where its `reboot` writes RESET_VALUE. Both end the VM, as in Firecracker.

import type { BusDevice } from './bus.js';
import { ACPI_PM } from '../arch/x86/acpi.js';
import { object, u16, type Persist, type StateReader } from './persist.js';

const PM1_CNT_SCI_EN = 1 << 0;
const PM1_CNT_SLP_TYP_SHIFT = 10;
const PM1_CNT_SLP_EN = 1 << 13;

export interface AcpiPmEvents {
  onPowerOff(): void;
  onReset(): void;
  /** A sleep state we do not implement (S1-S4); the guest goes on as if it woke at once. */
  onUnsupportedSleep(sleepType: number): void;
}

export interface AcpiPmState {
  status: number;
  enable: number;
  control: number;
}

/** Checks an AcpiPmState read from a snapshot. */
export const readAcpiPmState: StateReader<AcpiPmState> = object({ status: u16, enable: u16, control: u16 });

export class AcpiPm implements BusDevice, Persist<AcpiPmState> {
  #status = 0;
  #enable = 0;
  // SCI_EN set: the machine is in ACPI mode from the start (the FADT has no SMI_CMD).
  #control = PM1_CNT_SCI_EN;

  constructor(private readonly events: AcpiPmEvents) {}

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    const value = this.#register(offset);
    for (let i = 0; i < data.length; i++) data[i] = (value >>> (8 * i)) & 0xff;
  }

  write(offset: number, data: Uint8Array): void {
    let value = 0;
    for (let i = data.length - 1; i >= 0; i--) value = (value << 8) | data[i]!;
    const at = ACPI_PM.base + offset;
    if (at === ACPI_PM.pm1aEvent && data.length >= 2) {
      this.#status &= ~(value & 0xffff); // status bits are cleared by writing ones
      if (data.length >= 4) this.#enable = (value >>> 16) & 0xffff;
    } else if (at === ACPI_PM.pm1aEvent + 2) {
      this.#enable = value & 0xffff;
    } else if (at === ACPI_PM.pm1aControl) {
      this.#writeControl(value & 0xffff);
    } else if (at === ACPI_PM.reset && (value & 0xff) === ACPI_PM.resetValue) {
      this.events.onReset();
    }
  }

  #register(offset: number): number {
    switch (ACPI_PM.base + offset) {
      case ACPI_PM.pm1aEvent: return this.#status | (this.#enable << 16);
      case ACPI_PM.pm1aEvent + 2: return this.#enable;
      case ACPI_PM.pm1aControl: return this.#control;
      default: return 0;
    }
  }

  #writeControl(value: number): void {
    // SLP_EN is write-only: it triggers the transition and never reads back.
    this.#control = (value & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN;
    if (!(value & PM1_CNT_SLP_EN)) return;
    const sleepType = (value >>> PM1_CNT_SLP_TYP_SHIFT) & 7;
    if (sleepType === ACPI_PM.sleepTypeS5) this.events.onPowerOff();
    else this.events.onUnsupportedSleep(sleepType);
  }

  save(): AcpiPmState {
    return { status: this.#status, enable: this.#enable, control: this.#control };
  }

  restore(state: AcpiPmState): void {
    this.#status = state.status & 0xffff;
    this.#enable = state.enable & 0xffff;
    this.#control = (state.control & 0xffff) | PM1_CNT_SCI_EN;
  }
}
