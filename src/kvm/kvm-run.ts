// The kvm_run page shared with the kernel, and the decoded exit union. Nobody else reads kvm_run
// offsets: the exit loop works with VcpuExit values and the data accessors below.

import { KVM_RUN_OFFSETS as R } from './structs.js';
import { KVM_EXIT } from './ioctls.js';

export type VcpuExit =
  | { kind: 'io'; write: boolean; port: number; size: 1 | 2 | 4; count: number; dataOffset: number }
  | { kind: 'mmio'; write: boolean; address: number; length: number }
  | { kind: 'hlt' }
  | { kind: 'shutdown' }
  | { kind: 'interrupted' }
  | { kind: 'irq-window-open' }
  | { kind: 'fail-entry'; hardwareReason: bigint; cpu: number }
  | { kind: 'internal-error'; suberror: number; data: bigint[] }
  | { kind: 'system-event'; type: number; data: bigint[] }
  | { kind: 'unknown'; exitReason: number; hardwareReason: bigint };

export class KvmRun {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  /** Host address of the mapping, so another thread can wrap the same page. */
  readonly address: bigint;
  readonly #u16: Uint16Array;
  readonly #u32: Uint32Array;
  /** The last port-I/O data window handed out: KVM keeps it at one offset, so it is reused. */
  #ioWindow: Uint8Array;
  #ioWindowOffset = -1;

  constructor(buffer: ArrayBuffer, address: bigint) {
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
    this.address = address;
    this.#u16 = new Uint16Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#ioWindow = this.bytes.subarray(0, 0);
  }

  // The accessors below read one field each without allocating; the exit loop uses them for the
  // common exit (a single port I/O) and decode() for everything else.

  /** True for KVM_EXIT_IO moving one item: the exit a device driver makes most. */
  get isSingleIo(): boolean {
    return this.#u32[R.exit_reason / 4] === KVM_EXIT.KVM_EXIT_IO && this.#u32[R.io_count / 4] === 1;
  }

  get ioPort(): number {
    return this.#u16[R.io_port / 2]!;
  }

  get ioIsWrite(): boolean {
    return this.bytes[R.io_direction] === 1;
  }

  /** The data of a single port-I/O exit, as a view into this page. */
  get ioItem(): Uint8Array {
    // data_offset is a u64 but always small (inside the mapping): its low half is the value.
    const offset = this.#u32[R.io_data_offset / 4]!;
    const size = this.bytes[R.io_size]!;
    if (offset !== this.#ioWindowOffset || size !== this.#ioWindow.length) {
      this.#ioWindow = this.ioData({ size, count: 1, dataOffset: offset });
      this.#ioWindowOffset = offset;
    }
    return this.#ioWindow;
  }

  set immediateExit(value: boolean) {
    this.bytes[R.immediate_exit] = value ? 1 : 0;
  }

  get immediateExit(): boolean {
    return this.bytes[R.immediate_exit] !== 0;
  }

  get exitReason(): number {
    return this.view.getUint32(R.exit_reason, true);
  }

  /** Decodes the exit that the last KVM_RUN left here; `rc` is what that KVM_RUN returned. */
  decode(rc: number): VcpuExit {
    if (rc < 0) return { kind: 'interrupted' };
    const v = this.view;
    const reason = v.getUint32(R.exit_reason, true);
    switch (reason) {
      case KVM_EXIT.KVM_EXIT_IO:
        return {
          kind: 'io',
          write: v.getUint8(R.io_direction) === 1,
          size: v.getUint8(R.io_size) as 1 | 2 | 4,
          port: v.getUint16(R.io_port, true),
          count: v.getUint32(R.io_count, true),
          dataOffset: Number(v.getBigUint64(R.io_data_offset, true)),
        };
      case KVM_EXIT.KVM_EXIT_MMIO:
        return {
          kind: 'mmio',
          write: v.getUint8(R.mmio_is_write) !== 0,
          address: Number(v.getBigUint64(R.mmio_phys_addr, true)),
          length: v.getUint32(R.mmio_len, true),
        };
      case KVM_EXIT.KVM_EXIT_HLT:
        return { kind: 'hlt' };
      case KVM_EXIT.KVM_EXIT_SHUTDOWN:
        return { kind: 'shutdown' };
      case KVM_EXIT.KVM_EXIT_INTR:
        return { kind: 'interrupted' };
      case KVM_EXIT.KVM_EXIT_IRQ_WINDOW_OPEN:
        return { kind: 'irq-window-open' };
      case KVM_EXIT.KVM_EXIT_FAIL_ENTRY:
        return {
          kind: 'fail-entry',
          hardwareReason: v.getBigUint64(R.fail_entry_hardware_entry_failure_reason, true),
          cpu: v.getUint32(R.fail_entry_cpu, true),
        };
      case KVM_EXIT.KVM_EXIT_INTERNAL_ERROR: {
        const n = Math.min(v.getUint32(R.internal_ndata, true), 16);
        return {
          kind: 'internal-error',
          suberror: v.getUint32(R.internal_suberror, true),
          data: Array.from({ length: n }, (_, i) => v.getBigUint64(R.internal_data + 8 * i, true)),
        };
      }
      case KVM_EXIT.KVM_EXIT_SYSTEM_EVENT: {
        const n = Math.min(v.getUint32(R.system_event_ndata, true), 16);
        return {
          kind: 'system-event',
          type: v.getUint32(R.system_event_type, true),
          data: Array.from({ length: n }, (_, i) => v.getBigUint64(R.system_event_data + 8 * i, true)),
        };
      }
      default:
        return { kind: 'unknown', exitReason: reason, hardwareReason: v.getBigUint64(R.hw_hardware_exit_reason, true) };
    }
  }

  /** The value of an MMIO write, or the slot for an MMIO read's result (up to 8 bytes). */
  mmioData(length: number): Uint8Array {
    return this.bytes.subarray(R.mmio_data, R.mmio_data + Math.min(length, 8));
  }

  /** The bytes of a port-I/O exit: `size * count` bytes at `dataOffset` inside this page. */
  ioData(exit: { size: number; count: number; dataOffset: number }): Uint8Array {
    const end = exit.dataOffset + exit.size * exit.count;
    if (exit.dataOffset < R.exit || end > this.bytes.length) {
      throw new RangeError(`port I/O data at ${exit.dataOffset}+${exit.size * exit.count} leaves kvm_run`);
    }
    return this.bytes.subarray(exit.dataOffset, end);
  }
}
