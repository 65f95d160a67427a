import { describe, expect, it } from 'vitest';
import { KvmRun } from '../../src/kvm/kvm-run.js';
import { KVM_EXIT } from '../../src/kvm/ioctls.js';
import { KVM_RUN_OFFSETS as R } from '../../src/kvm/structs.js';
import { PostPort } from '../../src/devices/post-port.js';

/** A kvm_run page as KVM would leave it, in a plain buffer. */
function page(fill: (v: DataView) => void): KvmRun {
  const buffer = new ArrayBuffer(8192);
  fill(new DataView(buffer));
  return new KvmRun(buffer, 0n);
}

const io = (write: boolean, port: number, size: number, count: number) => page((v) => {
  v.setUint32(R.exit_reason, KVM_EXIT.KVM_EXIT_IO, true);
  v.setUint8(R.io_direction, write ? 1 : 0);
  v.setUint8(R.io_size, size);
  v.setUint16(R.io_port, port, true);
  v.setUint32(R.io_count, count, true);
  v.setBigUint64(R.io_data_offset, 4096n, true);
  v.setUint32(4096, 0x44332211, true);
});

describe('kvm_run decoding', () => {
  it('reads a single port write through the fast accessors, reusing one data window', () => {
    const run = io(true, 0x3f8, 1, 1);
    expect(run.isSingleIo).toBe(true);
    expect(run.ioPort).toBe(0x3f8);
    expect(run.ioIsWrite).toBe(true);
    expect([...run.ioItem]).toEqual([0x11]);
    expect(run.ioItem).toBe(run.ioItem);
    expect(run.decode(0)).toEqual({ kind: 'io', write: true, port: 0x3f8, size: 1, count: 1, dataOffset: 4096 });
  });

  it('leaves string I/O to the general path and bounds its data to the page', () => {
    const run = io(false, 0x1f0, 2, 2);
    expect(run.isSingleIo).toBe(false);
    const exit = run.decode(0);
    expect(exit).toMatchObject({ kind: 'io', write: false, size: 2, count: 2 });
    if (exit.kind === 'io') expect([...run.ioData(exit)]).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect(() => run.ioData({ size: 4, count: 10_000, dataOffset: 4096 })).toThrow(/leaves kvm_run/);
  });

  it('decodes MMIO, internal errors, system events, an interrupted run and unknown exits', () => {
    const mmio = page((v) => {
      v.setUint32(R.exit_reason, KVM_EXIT.KVM_EXIT_MMIO, true);
      v.setBigUint64(R.mmio_phys_addr, 0xd0000000n, true);
      v.setUint32(R.mmio_len, 4, true);
      v.setUint8(R.mmio_is_write, 1);
    });
    expect(mmio.decode(0)).toEqual({ kind: 'mmio', write: true, address: 0xd0000000, length: 4 });
    expect(mmio.mmioData(4).length).toBe(4);
    expect(mmio.decode(-4)).toEqual({ kind: 'interrupted' });

    const internal = page((v) => {
      v.setUint32(R.exit_reason, KVM_EXIT.KVM_EXIT_INTERNAL_ERROR, true);
      v.setUint32(R.internal_suberror, 1, true);
      v.setUint32(R.internal_ndata, 1000, true); // a lying count is clamped to the array
      v.setBigUint64(R.internal_data, 7n, true);
    });
    const decoded = internal.decode(0);
    expect(decoded).toMatchObject({ kind: 'internal-error', suberror: 1 });
    if (decoded.kind === 'internal-error') expect(decoded.data).toHaveLength(16);

    const event = page((v) => {
      v.setUint32(R.exit_reason, KVM_EXIT.KVM_EXIT_SYSTEM_EVENT, true);
      v.setUint32(R.system_event_type, 1, true);
    });
    expect(event.decode(0)).toEqual({ kind: 'system-event', type: 1, data: [] });
    expect(page((v) => v.setUint32(R.exit_reason, 99, true)).decode(0)).toMatchObject({ kind: 'unknown', exitReason: 99 });
  });
});

describe('POST port', () => {
  it('keeps the last code written', () => {
    const port = new PostPort();
    port.write(0, Uint8Array.of(0x42));
    const data = new Uint8Array(1);
    port.read(0, data);
    expect(data[0]).toBe(0x42);
  });
});
