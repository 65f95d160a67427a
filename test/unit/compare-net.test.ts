// The network figures of `tsvmm compare` from what the two ends print: the receiver's count
// (compare-work in ns, the guest in µs), the sender's, and the rates made of them.

import { describe, expect, it } from 'vitest';
import { PAYLOAD, parseReceived, parseSent, rates } from '../../src/compare/net.js';

describe('network stream counts', () => {
  it('reads a receiver line of compare-work (ns) and of the guest (µs)', () => {
    expect(parseReceived('work: udp received packets=70352 bytes=103558144 ns=996229627', 'x')).toEqual({ packets: 70352, seconds: 0.996229627 });
    expect(parseReceived('net: stream received packets=5877 bytes=8650944 us=2397979', 'x')).toEqual({ packets: 5877, seconds: 2.397979 });
  });

  it('says which end printed no count', () => {
    expect(() => parseReceived(undefined, 'VM')).toThrow(/^VM: no count of what it received$/);
    expect(() => parseReceived('net: timeout waiting for a stream to port 5201', 'VM')).toThrow('VM: no count of what it received in "net: timeout waiting for a stream to port 5201"');
    expect(() => parseSent(undefined, 'container: sender')).toThrow(/^container: sender: did not say what it sent$/);
  });

  it('reads what a sender sent, compare-work or the guest', () => {
    expect(parseSent('work: udp sent packets=255328 bytes=375842816 ns=2000870110', 'x')).toBe(255328);
    expect(parseSent('net: stream sent packets=7091 bytes=10437952 us=2001237', 'x')).toBe(7091);
  });

  it('counts the datagrams after the first over the time since the first, payload bits in Mbit/s', () => {
    const r = rates({ packets: 1001, seconds: 0.5 });
    expect(r.pps).toBe(2000);
    expect(r.mbps).toBeCloseTo((2000 * PAYLOAD * 8) / 1e6, 9);
    expect(PAYLOAD).toBe(1500 - 20 - 8);
  });

  it('refuses a stream that hardly arrived', () => {
    expect(() => rates({ packets: 91, seconds: 0 })).toThrow('only 91 datagrams arrived in 0.000 s');
    expect(() => rates({ packets: 5000, seconds: 0 })).toThrow(/only 5000 datagrams/);
  });
});
