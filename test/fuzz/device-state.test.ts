// The devices' save/restore contract (src/devices/persist.ts) against untrusted snapshot JSON:
// what a device saves reads back and restores to the same state, and for generated or mutated
// state a reader either accepts it (and the device then restores from it without throwing) or
// refuses it with one DeviceStateError naming the field.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeviceStateError, type StateReader } from '../../src/devices/persist.js';
import { createLegacyDevices, readLegacyDeviceState, restoreLegacyDevices, saveLegacyDevices } from '../../src/vmm/legacy-devices.js';
import { readVirtioRunnerState } from '../../src/devices/virtio/device.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { runs } from '../helpers/fuzz.js';

function devices() {
  return createLegacyDevices({
    irq: () => ({ set: () => {} }), consoleOut: { write: () => {} }, consoleIn: ByteRing.create(16),
    onReset: () => {}, onPowerOff: () => {}, onDeviceFault: (f) => { throw f.error; }, log: () => {},
  });
}

/** Replaces the value at a random path of a JSON tree with `replacement`. */
function mutateAt(value: unknown, choices: readonly number[], replacement: unknown): unknown {
  if (choices.length === 0 || typeof value !== 'object' || value === null) return replacement;
  const keys = Object.keys(value);
  if (keys.length === 0) return replacement;
  const key = keys[choices[0]! % keys.length]!;
  const copy: Record<string, unknown> = Array.isArray(value) ? [...value] as unknown as Record<string, unknown> : { ...value };
  copy[key] = mutateAt((value as Record<string, unknown>)[key], choices.slice(1), replacement);
  return copy;
}

function readsOrRefuses<T>(read: StateReader<T>, value: unknown): T | undefined {
  try {
    return read(value, 'x');
  } catch (error) {
    if (!(error instanceof DeviceStateError)) throw error;
    expect(error.code).toBe('BAD_SNAPSHOT');
    return undefined;
  }
}

describe('device state contract', () => {
  it('legacy devices: saved state reads back and restores to the same state', () => {
    const d = devices();
    d.pio.write(0x3fb, Uint8Array.of(0x83));
    d.pio.write(0x3f8, Uint8Array.of(0x01));
    d.pio.write(0x64, Uint8Array.of(0x20));
    d.pio.write(0x70, Uint8Array.of(0x0e));
    d.pio.write(0x71, Uint8Array.of(0x42));
    d.pio.write(0x80, Uint8Array.of(0x99));
    const saved = JSON.parse(JSON.stringify(saveLegacyDevices(d))) as unknown;
    const other = devices();
    restoreLegacyDevices(other, readLegacyDeviceState(saved, 'legacy'));
    expect(saveLegacyDevices(other)).toEqual(saved);
  });

  it('names the field that is wrong', () => {
    const saved = JSON.parse(JSON.stringify(saveLegacyDevices(devices()))) as { serial: { ier: unknown } };
    saved.serial.ier = 'x';
    expect(() => readLegacyDeviceState(saved, 'snap: legacy')).toThrow('device state snap: legacy.serial.ier: an integer from 0 to 255, not "x"');
    expect(() => readLegacyDeviceState(null, 'snap: legacy')).toThrow(DeviceStateError);
  });

  it('mutated legacy state: refused with a DeviceStateError, or restored without a throw', () => {
    const base = JSON.parse(JSON.stringify(saveLegacyDevices(devices()))) as unknown;
    fc.assert(fc.property(fc.array(fc.nat(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), (path, replacement) => {
      const state = readsOrRefuses(readLegacyDeviceState, mutateAt(base, path, replacement));
      if (state) restoreLegacyDevices(devices(), state);
    }), runs(2000));
  });

  it('generated virtio queue state: read or refused with a DeviceStateError', () => {
    fc.assert(fc.property(fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record({ active: fc.boolean(), broken: fc.boolean(), resetsSeen: fc.integer(), queues: fc.array(fc.tuple(fc.integer({ min: -1, max: 9 }), fc.record({ nextAvail: fc.integer({ min: -1, max: 0x10000 }), nextUsed: fc.nat({ max: 0xffff }), signalledUsed: fc.nat({ max: 0xffff }), notificationsEnabled: fc.boolean() })), { maxLength: 10 }) }),
    ), (value) => {
      readsOrRefuses(readVirtioRunnerState, value);
    }), runs(2000));
  });
});
