import { describe, expect, it } from 'vitest';
import { parseDiskOption, parseNetOption } from '../../src/cli/device-options.js';
import { parseMac } from '../../src/vmm/virtio-setup.js';

describe('device options', () => {
  it('parses --disk FILE and FILE,ro', () => {
    expect(parseDiskOption('disk.img')).toEqual({ path: 'disk.img', readOnly: false });
    expect(parseDiskOption('/images/a.raw,ro')).toEqual({ path: '/images/a.raw', readOnly: true });
    expect(() => parseDiskOption(',ro')).toThrow('--disk ,ro: needs a file name');
    expect(() => parseDiskOption('a.img,fast')).toThrow(/unknown flag "fast"/);
  });

  it('parses --net tap=NAME[,mac=MAC]', () => {
    expect(parseNetOption('tap=tap0')).toEqual({ tap: 'tap0', mac: undefined });
    expect(parseNetOption('tap=t1,mac=52:54:00:aa:bb:cc')).toEqual({ tap: 't1', mac: '52:54:00:aa:bb:cc' });
    expect(() => parseNetOption('tap0')).toThrow(/not key=value/);
    expect(() => parseNetOption('mac=52:54:00:aa:bb:cc')).toThrow(/needs tap=NAME/);
    expect(() => parseNetOption('tap=t,speed=10')).toThrow(/unknown key "speed"/);
  });

  it('parses MAC addresses and makes random ones locally administered', () => {
    expect([...parseMac('52:54:00:aa:bb:cc')]).toEqual([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
    expect(() => parseMac('52:54:00:aa:bb')).toThrow(/not a MAC address/);
    expect(() => parseMac('01:00:5e:00:00:01')).toThrow(/multicast/);
    const random = parseMac(undefined);
    expect([...random.subarray(0, 3)]).toEqual([0x52, 0x54, 0]);
  });
});
