import { describe, expect, it } from 'vitest';
import { RtcCmos } from '../../src/devices/rtc-cmos.js';

const T = Date.UTC(2026, 10, 23, 21, 7, 45); // Monday 2026-11-23 21:07:45 UTC

function rtc(now = () => T) {
  const dev = new RtcCmos(now);
  const read = (index: number) => { dev.write(0, Uint8Array.of(index)); const d = new Uint8Array(1); dev.read(1, d); return d[0]!; };
  const write = (index: number, value: number) => { dev.write(0, Uint8Array.of(index)); dev.write(1, Uint8Array.of(value)); };
  return { dev, read, write };
}

describe('CMOS RTC', () => {
  it("reads the host's UTC time in BCD, 24-hour, with valid-time set", () => {
    const r = rtc();
    expect([r.read(0x00), r.read(0x02), r.read(0x04)]).toEqual([0x45, 0x07, 0x21]);
    expect([r.read(0x07), r.read(0x08), r.read(0x09), r.read(0x32)]).toEqual([0x23, 0x11, 0x26, 0x20]);
    expect(r.read(0x06)).toBe(0x02); // Monday: day-of-week counts from Sunday = 1
    expect(r.read(0x0d) & 0x80).toBe(0x80);
    expect(r.read(0x0a) & 0x80).toBe(0); // never "update in progress"
  });

  it('switches to binary and 12-hour mode as status B says', () => {
    const r = rtc();
    r.write(0x0b, 0x04); // binary, 12-hour
    expect(r.read(0x00)).toBe(45);
    expect(r.read(0x04)).toBe(0x80 | 9); // 21h = 9 PM
  });

  it('ignores the NMI-disable bit of the index port', () => {
    const r = rtc();
    expect(r.read(0x80 | 0x00)).toBe(0x45);
  });

  it('keeps a time the guest sets as an offset that moves with the host clock', () => {
    let now = T;
    const r = rtc(() => now);
    r.write(0x09, 0x30); // year 2030
    r.write(0x04, 0x08); // 08h
    expect([r.read(0x09), r.read(0x04), r.read(0x02)]).toEqual([0x30, 0x08, 0x07]);
    now += 60_000;
    expect(r.read(0x02)).toBe(0x08);
    const copy = rtc(() => now);
    copy.dev.restore(r.dev.save());
    expect(copy.read(0x09)).toBe(0x30);
  });

  it('keeps ordinary CMOS bytes', () => {
    const r = rtc();
    r.write(0x40, 0xab);
    expect(r.read(0x40)).toBe(0xab);
  });
});
