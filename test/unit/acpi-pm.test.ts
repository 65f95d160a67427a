import { describe, expect, it } from 'vitest';
import { AcpiPm } from '../../src/devices/acpi-pm.js';
import { ACPI_PM } from '../../src/arch/x86/acpi.js';

function pm() {
  const events: string[] = [];
  const dev = new AcpiPm({
    onPowerOff: () => events.push('poweroff'),
    onReset: () => events.push('reset'),
    onUnsupportedSleep: (t) => events.push(`sleep ${t}`),
  });
  const at = (port: number) => port - ACPI_PM.base;
  const write16 = (port: number, v: number) => dev.write(at(port), Uint8Array.of(v & 0xff, v >> 8));
  const read16 = (port: number) => { const d = new Uint8Array(2); dev.read(at(port), d); return d[0]! | (d[1]! << 8); };
  return { dev, events, write16, read16, at };
}

describe('ACPI PM registers', () => {
  it('powers off on SLP_TYP=S5 with SLP_EN, as Linux `poweroff` writes it', () => {
    const p = pm();
    expect(p.read16(ACPI_PM.pm1aControl) & 1).toBe(1); // SCI_EN: already in ACPI mode
    p.write16(ACPI_PM.pm1aControl, ACPI_PM.sleepTypeS5 << 10); // without SLP_EN: nothing yet
    expect(p.events).toEqual([]);
    p.write16(ACPI_PM.pm1aControl, (ACPI_PM.sleepTypeS5 << 10) | (1 << 13));
    expect(p.events).toEqual(['poweroff']);
    expect(p.read16(ACPI_PM.pm1aControl) & (1 << 13)).toBe(0); // SLP_EN is write-only
  });

  it('reports sleep states it does not implement instead of powering off', () => {
    const p = pm();
    p.write16(ACPI_PM.pm1aControl, (3 << 10) | (1 << 13));
    expect(p.events).toEqual(['sleep 3']);
  });

  it('resets on RESET_VALUE written to the reset register, and only on that value', () => {
    const p = pm();
    p.dev.write(p.at(ACPI_PM.reset), Uint8Array.of(0x42));
    p.dev.write(p.at(ACPI_PM.reset), Uint8Array.of(ACPI_PM.resetValue));
    expect(p.events).toEqual(['reset']);
  });

  it('keeps the PM1 enable register and clears status bits written as ones', () => {
    const p = pm();
    p.write16(ACPI_PM.pm1aEvent + 2, 0x0120);
    expect(p.read16(ACPI_PM.pm1aEvent + 2)).toBe(0x0120);
    const fresh = pm();
    fresh.dev.restore(p.dev.save());
    expect(fresh.read16(ACPI_PM.pm1aEvent + 2)).toBe(0x0120);
  });
});
