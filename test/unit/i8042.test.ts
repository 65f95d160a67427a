import { describe, expect, it } from 'vitest';
import { I8042 } from '../../src/devices/i8042.js';

function controller() {
  let resets = 0;
  const dev = new I8042(() => { resets++; });
  const rd = (offset: number) => { const d = new Uint8Array(1); dev.read(offset, d); return d[0]!; };
  const wr = (offset: number, v: number) => dev.write(offset, Uint8Array.of(v));
  return { rd, wr, resets: () => resets, dev };
}

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

  it('saves and restores', () => {
    const c = controller();
    c.wr(4, 0xaa);
    const d = controller();
    d.dev.restore(c.dev.save());
    expect(d.rd(0)).toBe(0x55);
  });
});
