// The ring of a vCPU's last exits that a crash report shows (src/vmm/exit-trace.ts).

import { describe, expect, it } from 'vitest';
import { CLOCK_EVERY, EXIT_TRACE_LENGTH, ExitTrace } from '../../src/vmm/exit-trace.js';
import { KVM_EXIT } from '../../src/kvm/ioctls.js';

describe('ExitTrace', () => {
  it('describes port I/O, MMIO, kicks and other exits, oldest first', () => {
    const trace = new ExitTrace();
    expect(trace.entries()).toEqual([]);
    expect(trace.lastReason).toBeUndefined();
    trace.access(KVM_EXIT.KVM_EXIT_IO, 0x3f8, true, Uint8Array.of(0x41));
    trace.access(KVM_EXIT.KVM_EXIT_IO, 0x3fd, false, Uint8Array.of(0x60));
    trace.access(KVM_EXIT.KVM_EXIT_MMIO, 0xd0000050, false, Uint8Array.of(0x78, 0x56, 0x34, 0x12));
    trace.other(-4, 0);
    trace.other(0, KVM_EXIT.KVM_EXIT_HLT);
    expect(trace.lastReason).toBe(KVM_EXIT.KVM_EXIT_HLT);
    trace.other(0, KVM_EXIT.KVM_EXIT_SHUTDOWN);
    const entries = trace.entries();
    expect(entries.map((e) => e.exit)).toEqual([
      'io write 0x3f8 1 = 0x41',
      'io read 0x3fd 1 -> 0x60',
      'mmio read 0xd0000050 4 -> 0x12345678',
      'interrupted (kick)',
      'hlt',
      'shutdown',
    ]);
    expect(entries.every((e, i) => i === 0 || e.atMs >= entries[i - 1]!.atMs)).toBe(true);
    expect(entries.every((e) => e.after === 0)).toBe(true);
  });

  it('reads the clock for the fast path\'s port accesses only every CLOCK_EVERY entries, and says how far back the time is', () => {
    const trace = new ExitTrace();
    trace.access(KVM_EXIT.KVM_EXIT_IO, 0x3fd, false, Uint8Array.of(0x60), true);
    expect(trace.entries()[0]).toMatchObject({ after: 0, atMs: expect.any(Number) }); // the first reads it
    expect(trace.entries()[0]!.atMs).toBeGreaterThan(0);
    trace.other(0, KVM_EXIT.KVM_EXIT_HLT);
    for (let i = 0; i < CLOCK_EVERY + 2; i++) trace.access(KVM_EXIT.KVM_EXIT_IO, 0x3fd, false, Uint8Array.of(0x60), true);
    // After the hlt (its own time): 1 .. CLOCK_EVERY - 1 entries without, then one that reads it.
    const after = trace.entries().map((e) => e.after);
    expect(after.slice(-5)).toEqual([CLOCK_EVERY - 2, CLOCK_EVERY - 1, 0, 1, 2]);
    const entries = trace.entries();
    expect(entries.at(-1)!.atMs).toBe(entries.at(-2)!.atMs);
    // Any other exit reads the clock.
    trace.access(KVM_EXIT.KVM_EXIT_MMIO, 0xd0000000, true, Uint8Array.of(1));
    expect(trace.entries().at(-1)!.after).toBe(0);
  });

  it('keeps only the last EXIT_TRACE_LENGTH exits, and a kick is no exit to finish', () => {
    const trace = new ExitTrace();
    for (let port = 0; port < EXIT_TRACE_LENGTH + 5; port++) trace.access(KVM_EXIT.KVM_EXIT_IO, port, true, Uint8Array.of(1, 2));
    const entries = trace.entries();
    expect(entries).toHaveLength(EXIT_TRACE_LENGTH);
    expect(entries[0]!.exit).toBe('io write 0x5 2 = 0x201');
    expect(entries.at(-1)!.exit).toBe(`io write 0x${(EXIT_TRACE_LENGTH + 4).toString(16)} 2 = 0x201`);
    expect(trace.lastReason).toBe(KVM_EXIT.KVM_EXIT_IO);
    trace.other(-4, 0);
    expect(trace.lastReason).toBeUndefined();
  });
});
