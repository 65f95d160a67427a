// A single-producer, single-consumer byte queue in a SharedArrayBuffer, for console traffic
// between a vCPU thread and the main thread without a message per byte. The producer never
// blocks on a reader that is not waiting: it only notifies when the consumer said it sleeps.

import type { ByteSink, ByteSource } from '../devices/byte-stream.js';

const HEAD = 0; //    bytes written, modulo 2^32
const TAIL = 1; //    bytes read, modulo 2^32
const WAITING = 2; // 1 while the consumer waits for data
const HEADER_INTS = 4;

export class ByteRing implements ByteSink, ByteSource {
  readonly buffer: SharedArrayBuffer;
  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER_INTS);
    this.#data = new Uint8Array(buffer, HEADER_INTS * 4);
    this.#mask = this.#data.length - 1;
  }

  /** `capacity` must be a power of two. */
  static create(capacity = 64 * 1024): ByteRing {
    if (capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new RangeError('capacity must be a power of two');
    return new ByteRing(new SharedArrayBuffer(HEADER_INTS * 4 + capacity));
  }

  static attach(buffer: SharedArrayBuffer): ByteRing {
    return new ByteRing(buffer);
  }

  /** The head and tail counters (bytes written, bytes read), for a native reader to compare. */
  get counters(): Int32Array {
    return this.#header.subarray(HEAD, TAIL + 1);
  }

  get capacity(): number {
    return this.#data.length;
  }

  /** Bytes waiting to be read. */
  get available(): number {
    return (Atomics.load(this.#header, HEAD) - Atomics.load(this.#header, TAIL)) >>> 0;
  }

  /** Appends one byte; if the ring is full the producer waits for the consumer, as a busy line would. */
  write(byte: number): void {
    for (;;) {
      const head = Atomics.load(this.#header, HEAD);
      const tail = Atomics.load(this.#header, TAIL);
      if (((head - tail) >>> 0) < this.#data.length) {
        this.#data[head & this.#mask] = byte;
        Atomics.store(this.#header, HEAD, (head + 1) | 0);
        this.#wake();
        return;
      }
      Atomics.wait(this.#header, TAIL, tail, 10);
    }
  }

  /** Appends as many bytes as fit; returns how many did. Never blocks. */
  writeSome(bytes: Uint8Array): number {
    const head = Atomics.load(this.#header, HEAD);
    const free = this.#data.length - ((head - Atomics.load(this.#header, TAIL)) >>> 0);
    const n = Math.min(free, bytes.length);
    for (let i = 0; i < n; i++) this.#data[(head + i) & this.#mask] = bytes[i]!;
    if (n > 0) {
      Atomics.store(this.#header, HEAD, (head + n) | 0);
      this.#wake();
    }
    return n;
  }

  read(into: Uint8Array): number {
    const tail = Atomics.load(this.#header, TAIL);
    const n = Math.min(into.length, (Atomics.load(this.#header, HEAD) - tail) >>> 0);
    for (let i = 0; i < n; i++) into[i] = this.#data[(tail + i) & this.#mask]!;
    if (n > 0) {
      Atomics.store(this.#header, TAIL, (tail + n) | 0);
      Atomics.notify(this.#header, TAIL);
    }
    return n;
  }

  /** Everything waiting, as one chunk. */
  drain(): Uint8Array {
    const out = new Uint8Array(this.available);
    return out.subarray(0, this.read(out));
  }

  /** Resolves when data is waiting (at once if some is). For the consumer on the main thread. */
  async waitForData(): Promise<void> {
    for (;;) {
      const head = Atomics.load(this.#header, HEAD);
      if (head !== Atomics.load(this.#header, TAIL)) return;
      Atomics.store(this.#header, WAITING, 1);
      const result = Atomics.waitAsync(this.#header, HEAD, head);
      if (result.async) await result.value;
    }
  }

  /** Wakes a consumer blocked in waitForData (also used to cut its wait short). */
  wakeConsumer(): void {
    Atomics.store(this.#header, WAITING, 0);
    Atomics.notify(this.#header, HEAD);
  }

  #wake(): void {
    if (Atomics.load(this.#header, WAITING) !== 0) this.wakeConsumer();
  }
}
