// The last exits of one vCPU, kept in a small ring on the exit path so that a crash report can
// say what the vCPU was doing just before it died (a triple fault right after an MMIO read of
// garbage, a kick that came in between, ...). Recording is a few stores into a typed array.
// Writes KVM queued instead of exiting (the UART's, kvm/coalesced-ring.ts) are recorded as they
// are replayed, just before the exit that replays them.
//
// Reading the clock is the dearest part of recording: ~0.2 us on the exit path here, ~2.5% of a
// port-I/O exit, against ~60 ns in a loop that does nothing else (after the guest ran, what the
// read touches is presumably no longer cached). So the exit loop's fast path (a
// single port access) and replayed writes read it only every CLOCK_EVERY entries; every other exit
// reads it. An entry without a time of its own carries the last time read and how many entries
// came since.

import { KVM_EXIT } from '../kvm/ioctls.js';
import { processMs } from '../meta/clock.js';

/** How many exits a vCPU remembers. */
export const EXIT_TRACE_LENGTH = 32;

/** How often an entry that may skip the clock reads it anyway, so that times stay near. */
export const CLOCK_EVERY = 64;

/**
 * Slots per entry: time (ms since the VMM started), entries since that time was read, exit reason,
 * address, flags, data.
 */
const SLOTS = 6;
/** The reason recorded for a KVM_RUN that a kick (signal or immediate_exit) cut short. */
const INTERRUPTED = -1;

const FLAG_WRITE = 1;

export interface TracedExit {
  /**
   * ms since the process started (processMs), comparable across vCPUs: this exit's time, or with
   * `after` > 0, the time of the exit `after` entries before it (see above).
   */
  atMs: number;
  /** 0 when `atMs` is this exit's own time; else how many entries after the time read it came. */
  after: number;
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
  /** The last time read, and how many entries were recorded after it without reading the clock. */
  #lastMs = 0;
  #after = CLOCK_EVERY - 1; // so that the first entry reads it

  /**
   * Port I/O or MMIO: `data` is what was written, or what the device answered to a read. `often`:
   * the exit loop's fast path or a replayed write, which read the clock only every CLOCK_EVERY.
   */
  access(reason: number, address: number, write: boolean, data: Uint8Array, often = false): void {
    let value = 0;
    for (let i = Math.min(data.length, 4) - 1; i >= 0; i--) value = value * 256 + data[i]!;
    this.#put(reason, address, (write ? FLAG_WRITE : 0) | (data.length << 1), value, often);
  }

  /** Any other exit; `rc` < 0 is a KVM_RUN that returned early (a kick). */
  other(rc: number, reason: number): void {
    this.#put(rc < 0 ? INTERRUPTED : reason, 0, 0, 0, false);
  }

  /** The last exit's reason (KVM_EXIT_*), or undefined if there was none or it was a kick. */
  get lastReason(): number | undefined {
    if (this.#count === 0) return undefined;
    const reason = this.#ring[((this.#next + EXIT_TRACE_LENGTH - 1) % EXIT_TRACE_LENGTH) * SLOTS + 2]!;
    return reason === INTERRUPTED ? undefined : reason;
  }

  #put(reason: number, address: number, flags: number, data: number, often: boolean): void {
    if (!often || this.#after >= CLOCK_EVERY - 1) {
      this.#lastMs = processMs();
      this.#after = 0;
    } else {
      this.#after++;
    }
    const at = this.#next * SLOTS;
    const ring = this.#ring;
    ring[at] = this.#lastMs;
    ring[at + 1] = this.#after;
    ring[at + 2] = reason;
    ring[at + 3] = address;
    ring[at + 4] = flags;
    ring[at + 5] = data;
    this.#next = (this.#next + 1) % EXIT_TRACE_LENGTH;
    if (this.#count < EXIT_TRACE_LENGTH) this.#count++;
  }

  /** Oldest first. */
  entries(): TracedExit[] {
    const out: TracedExit[] = [];
    for (let i = 0; i < this.#count; i++) {
      const at = ((this.#next - this.#count + i + EXIT_TRACE_LENGTH) % EXIT_TRACE_LENGTH) * SLOTS;
      const [atMs, after, reason, address, flags, data] = this.#ring.subarray(at, at + SLOTS) as unknown as number[];
      out.push({ atMs: Number(atMs!.toFixed(3)), after: after!, exit: describe(reason!, address!, flags!, data!) });
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
