// The last exits of one vCPU, kept in a small ring on the exit path so that a crash report can
// say what the vCPU was doing just before it died (a triple fault right after an MMIO read of
// garbage, a kick that came in between, ...). Recording is a few stores into a typed array.
// Writes KVM queued instead of exiting (the UART's, kvm/coalesced-ring.ts) are recorded as they
// are replayed, just before the exit that replays them.

import { KVM_EXIT } from '../kvm/ioctls.js';
import { processMs } from '../meta/clock.js';

/** How many exits a vCPU remembers. */
export const EXIT_TRACE_LENGTH = 32;

/** Slots per entry: time (ms since the VMM started), exit reason, address, flags, data. */
const SLOTS = 5;
/** The reason recorded for a KVM_RUN that a kick (signal or immediate_exit) cut short. */
const INTERRUPTED = -1;

const FLAG_WRITE = 1;

export interface TracedExit {
  /** ms since the process started (processMs), comparable across vCPUs. */
  atMs: number;
  /** "io in 0x3f8 1 = 0x41", "mmio write 0xd0000050 4 = 0x1", "hlt", "interrupted". */
  exit: string;
}

const REASON_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(KVM_EXIT).map(([name, value]) => [value, name.replace(/^KVM_EXIT_/, '').toLowerCase().replace(/_/g, '-')]),
);

export class ExitTrace {
  readonly #ring = new Float64Array(EXIT_TRACE_LENGTH * SLOTS);
  #next = 0;
  #count = 0;

  /** Port I/O or MMIO: `data` is what was written, or what the device answered to a read. */
  access(reason: number, address: number, write: boolean, data: Uint8Array): void {
    let value = 0;
    for (let i = Math.min(data.length, 4) - 1; i >= 0; i--) value = value * 256 + data[i]!;
    this.#put(reason, address, (write ? FLAG_WRITE : 0) | (data.length << 1), value);
  }

  /** Any other exit; `rc` < 0 is a KVM_RUN that returned early (a kick). */
  other(rc: number, reason: number): void {
    this.#put(rc < 0 ? INTERRUPTED : reason, 0, 0, 0);
  }

  /** The last exit's reason (KVM_EXIT_*), or undefined if there was none or it was a kick. */
  get lastReason(): number | undefined {
    if (this.#count === 0) return undefined;
    const reason = this.#ring[((this.#next + EXIT_TRACE_LENGTH - 1) % EXIT_TRACE_LENGTH) * SLOTS + 1]!;
    return reason === INTERRUPTED ? undefined : reason;
  }

  #put(reason: number, address: number, flags: number, data: number): void {
    const at = this.#next * SLOTS;
    const ring = this.#ring;
    ring[at] = processMs();
    ring[at + 1] = reason;
    ring[at + 2] = address;
    ring[at + 3] = flags;
    ring[at + 4] = data;
    this.#next = (this.#next + 1) % EXIT_TRACE_LENGTH;
    if (this.#count < EXIT_TRACE_LENGTH) this.#count++;
  }

  /** Oldest first. */
  entries(): TracedExit[] {
    const out: TracedExit[] = [];
    for (let i = 0; i < this.#count; i++) {
      const at = ((this.#next - this.#count + i + EXIT_TRACE_LENGTH) % EXIT_TRACE_LENGTH) * SLOTS;
      const [atMs, reason, address, flags, data] = this.#ring.subarray(at, at + SLOTS) as unknown as number[];
      out.push({ atMs: Number(atMs!.toFixed(3)), exit: describe(reason!, address!, flags!, data!) });
    }
    return out;
  }
}

function describe(reason: number, address: number, flags: number, data: number): string {
  if (reason === INTERRUPTED) return 'interrupted (kick)';
  const name = REASON_NAMES[reason] ?? `exit ${reason}`;
  if (reason !== KVM_EXIT.KVM_EXIT_IO && reason !== KVM_EXIT.KVM_EXIT_MMIO) return name;
  const write = (flags & FLAG_WRITE) !== 0;
  const size = flags >> 1;
  return `${name} ${write ? 'write' : 'read'} 0x${address.toString(16)} ${size} ${write ? '=' : '->'} 0x${data.toString(16)}`;
}
