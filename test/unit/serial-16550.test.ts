import { describe, expect, it } from 'vitest';
import { RX_FIFO_SIZE, Serial16550 } from '../../src/devices/serial-16550.js';
import type { ByteSource } from '../../src/devices/byte-stream.js';

function uart(input: number[] = []) {
  const out: number[] = [];
  const irq: boolean[] = [];
  const source: ByteSource = {
    read(into) {
      const n = Math.min(into.length, input.length);
      into.set(input.splice(0, n));
      return n;
    },
  };
  const serial = new Serial16550({ set: (level) => irq.push(level) }, { write: (b) => out.push(b) }, source);
  const rd = (offset: number) => { const d = new Uint8Array(1); serial.read(offset, d); return d[0]!; };
  const wr = (offset: number, value: number) => serial.write(offset, Uint8Array.of(value));
  return { serial, out, irq, input, rd, wr };
}

describe('16550A UART', () => {
  it('transmits THR writes at once and always reports the transmitter empty', () => {
    const u = uart();
    for (const c of 'hi\n') u.wr(0, c.charCodeAt(0));
    expect(Buffer.from(u.out).toString()).toBe('hi\n');
    expect(u.rd(5) & 0x60).toBe(0x60);
  });

  it('keeps the divisor latch apart from THR/IER while DLAB is set', () => {
    const u = uart();
    u.wr(3, 0x80);
    u.wr(0, 0x01);
    u.wr(1, 0x02);
    expect([u.rd(0), u.rd(1)]).toEqual([0x01, 0x02]);
    u.wr(3, 0x03);
    expect(u.out).toEqual([]);
    expect(u.rd(1)).toBe(0);
    expect(u.rd(3)).toBe(0x03);
  });

  it('keeps the scratch register, as the 8250 driver probes it', () => {
    const u = uart();
    u.wr(7, 0xa5);
    expect(u.rd(7)).toBe(0xa5);
  });

  it('receives input through the FIFO with data-ready and a received-data interrupt', () => {
    const u = uart([0x61, 0x62]);
    u.wr(1, 0x01); // IER: received data available
    expect(u.irq).toEqual([]);
    u.serial.pollInput();
    expect(u.irq).toEqual([true]);
    expect(u.rd(2) & 0x0f).toBe(0x04);
    expect(u.rd(5) & 0x01).toBe(1);
    expect([u.rd(0), u.rd(0)]).toEqual([0x61, 0x62]);
    expect(u.rd(5) & 0x01).toBe(0);
    expect(u.irq).toEqual([true, false]);
    expect(u.rd(2) & 0x0f).toBe(0x01);
  });

  it('raises the transmitter-empty interrupt when enabled and clears it when IIR is read', () => {
    const u = uart();
    u.wr(1, 0x02);
    expect(u.irq).toEqual([true]);
    expect(u.rd(2) & 0x0f).toBe(0x02);
    expect(u.irq).toEqual([true, false]);
    u.wr(0, 0x41); // a write makes THR empty again: another interrupt
    expect(u.irq).toEqual([true, false, true]);
  });

  it('loops transmitted bytes back and mirrors MCR in MSR in loopback mode', () => {
    const u = uart();
    u.wr(4, 0x10 | 0x0f);
    expect(u.rd(6) & 0xf0).toBe(0xf0);
    u.wr(0, 0x5a);
    expect(u.out).toEqual([]);
    expect(u.rd(0)).toBe(0x5a);
    u.wr(4, 0x00);
    expect(u.rd(6)).toBe(0xb0); // carrier, DSR, CTS: a terminal is attached
  });

  it('leaves input it has no room for in the source instead of dropping it', () => {
    const input = Array.from({ length: RX_FIFO_SIZE + 10 }, (_, i) => i & 0xff);
    const u = uart(input);
    u.serial.pollInput();
    expect(u.input.length).toBe(10);
    u.wr(2, 0x02); // FCR: clear the receive FIFO
    expect(u.rd(5) & 0x01).toBe(1); // LSR pulls the rest in
    expect(u.input.length).toBe(0);
  });

  it('saves and restores its registers and FIFO', () => {
    const u = uart([1, 2, 3]);
    u.wr(1, 0x01);
    u.wr(7, 0x77);
    u.serial.pollInput();
    const state = u.serial.save();
    const v = uart();
    v.serial.restore(state);
    expect(v.rd(7)).toBe(0x77);
    expect([v.rd(0), v.rd(0), v.rd(0)]).toEqual([1, 2, 3]);
    expect(v.irq[0]).toBe(true);
  });
});
