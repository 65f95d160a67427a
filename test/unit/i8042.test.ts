import { describe, expect, it } from 'vitest';
import { I8042 } from '../../src/devices/i8042.js';

function controller() {
  let resets = 0;
  /** Every change of the two interrupt lines, in order: "kbd+", "aux-", ... */
  const edges: string[] = [];
  const line = (name: string) => ({ set: (level: boolean) => { edges.push(`${name}${level ? '+' : '-'}`); } });
  const dev = new I8042({ onReset: () => { resets++; }, kbdIrq: line('kbd'), auxIrq: line('aux') });
  const rd = (offset: number) => { const d = new Uint8Array(1); dev.read(offset, d); return d[0]!; };
  const wr = (offset: number, v: number) => dev.write(offset, Uint8Array.of(v));
  /** A controller command and the byte it answers, as Linux's i8042_command() does it. */
  const command = (cmd: number, data?: number) => {
    wr(4, cmd);
    if (data !== undefined) wr(0, data);
    return rd(4) & 0x01 ? rd(0) : undefined;
  };
  return { rd, wr, command, edges, resets: () => resets, dev };
}

const OBF = 0x01;
const UNLOCKED = 0x10;
const AUXDATA = 0x20;
const TIMEOUT = 0x40;
const CTR_AUXDIS = 0x20;
const CTR_KBDDIS = 0x10;

describe('i8042', () => {
  it('takes command 0xfe on port 0x64 as a CPU reset', () => {
    const c = controller();
    c.wr(4, 0xfe);
    expect(c.resets()).toBe(1);
  });

  it('takes clearing the reset bit of the output port as a reset too', () => {
    const c = controller();
    c.wr(4, 0xd1);
    c.wr(0, 0x01);
    expect(c.resets()).toBe(0);
    c.wr(4, 0xd1);
    c.wr(0, 0x00);
    expect(c.resets()).toBe(1);
  });

  it('answers the self-test and the command byte through the output buffer', () => {
    const c = controller();
    c.wr(4, 0xaa);
    expect(c.rd(4) & 0x01).toBe(1);
    expect(c.rd(0)).toBe(0x55);
    expect(c.rd(4) & 0x01).toBe(0);
    c.wr(4, 0x60);
    c.wr(0, 0x21);
    c.wr(4, 0x20);
    expect(c.rd(0)).toBe(0x21);
  });

  it('saves and restores, without a second interrupt for a byte already signalled', () => {
    const c = controller();
    c.wr(4, 0xaa);
    const d = controller();
    d.dev.restore(c.dev.save());
    expect(d.edges).toEqual([]);
    expect(d.rd(0)).toBe(0x55);
  });

  // What Linux's i8042 driver checks while probing (drivers/input/serio/i8042.c), so that it
  // neither warns nor waits out its time-outs.
  it('shows the keyboard as not inhibited (no "Keylock active")', () => {
    expect(controller().rd(4) & UNLOCKED).toBe(UNLOCKED);
  });

  it('reflects 0xa7/0xa8 and 0xad/0xae in the command byte (i8042_toggle_aux)', () => {
    const c = controller();
    c.command(0xa7);
    expect(c.command(0x20)! & CTR_AUXDIS).toBe(CTR_AUXDIS);
    c.command(0xa8);
    expect(c.command(0x20)! & CTR_AUXDIS).toBe(0);
    c.command(0xad);
    expect(c.command(0x20)! & CTR_KBDDIS).toBe(CTR_KBDDIS);
    c.command(0xae);
    expect(c.command(0x20)! & CTR_KBDDIS).toBe(0);
  });

  it('echoes AUX loopback (0xd3) as AUX data, raising IRQ 12 when the command byte enables it', () => {
    const c = controller();
    c.command(0x60, 0x47); // keyboard and AUX interrupts on
    c.edges.length = 0;
    c.wr(4, 0xd3);
    c.wr(0, 0xa5);
    expect(c.rd(4) & (OBF | AUXDATA)).toBe(OBF | AUXDATA);
    expect(c.edges).toEqual(['aux+']);
    expect(c.rd(0)).toBe(0xa5);
    expect(c.edges).toEqual(['aux+', 'aux-']);
    expect(c.rd(4) & OBF).toBe(0);
  });

  it('echoes keyboard loopback (0xd2) on IRQ 1, and raises no interrupt the command byte masks', () => {
    const c = controller();
    c.command(0x60, 0x44); // both interrupts off
    c.edges.length = 0;
    expect(c.command(0xd2, 0x5a)).toBe(0x5a);
    expect(c.edges).toEqual([]);
    c.command(0x60, 0x45);
    c.wr(4, 0xd2);
    c.wr(0, 0x5b);
    expect(c.rd(4) & AUXDATA).toBe(0);
    expect(c.edges).toEqual(['kbd+']);
    expect(c.rd(0)).toBe(0x5b);
  });

  it('gives every queued byte an edge of its own', () => {
    const c = controller();
    c.command(0x60, 0x47);
    c.edges.length = 0;
    c.wr(4, 0xd3); c.wr(0, 1);
    c.wr(4, 0xd3); c.wr(0, 2);
    expect(c.rd(0)).toBe(1);
    expect(c.rd(0)).toBe(2);
    expect(c.edges).toEqual(['aux+', 'aux-', 'aux+', 'aux-']);
  });

  it('answers a byte for the absent keyboard or mouse with 0xfe and the time-out bit', () => {
    const c = controller();
    c.wr(0, 0xf2); // keyboard GET ID
    expect(c.rd(4) & (OBF | TIMEOUT | AUXDATA)).toBe(OBF | TIMEOUT);
    expect(c.rd(0)).toBe(0xfe);
    c.wr(4, 0xd4); // to the AUX device
    c.wr(0, 0xf2);
    expect(c.rd(4) & (OBF | TIMEOUT | AUXDATA)).toBe(OBF | TIMEOUT | AUXDATA);
    expect(c.rd(0)).toBe(0xfe);
  });

  it('passes the port tests and keeps the system flag after a self-test', () => {
    const c = controller();
    expect(c.command(0xa9)).toBe(0x00);
    expect(c.command(0xab)).toBe(0x00);
    expect(c.command(0xaa)).toBe(0x55);
    expect(c.rd(4) & 0x04).toBe(0x04);
  });

  it('holds a bounded number of unread bytes', () => {
    const c = controller();
    for (let i = 0; i < 100; i++) c.wr(4, 0x20);
    let n = 0;
    while (c.rd(4) & OBF) { c.rd(0); n++; }
    expect(n).toBe(16);
  });
});
