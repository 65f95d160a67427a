// virtio-console (device id 3), one port: what the driver puts in the transmit queue goes to
// the console output; typed input fills the buffers it posts in the receive queue.

import { EventFd } from '../../kvm/event-fd.js';
import type { ByteSink, ByteSource } from '../byte-stream.js';
import { serveQueue, type VirtioBackend, type VirtioBackendContext } from './device.js';
import { VIRTIO_F_VERSION_1, type VirtioDeviceInfo } from './mmio-transport.js';

export const VIRTIO_ID_CONSOLE = 3;
const RECEIVE_QUEUE = 0;
const TRANSMIT_QUEUE = 1;

export function consoleInfo(): VirtioDeviceInfo {
  // Config: cols, rows, max_nr_ports, emerg_wr; without SIZE or MULTIPORT the driver ignores them.
  return { deviceId: VIRTIO_ID_CONSOLE, features: VIRTIO_F_VERSION_1, queueSizes: [64, 64], config: new Uint8Array(12) };
}

export class ConsoleBackend implements VirtioBackend {
  #ctx: VirtioBackendContext | undefined;

  /** `inputReady` is an eventfd the main thread signals after queueing input in `input`. */
  readonly #inputReady: EventFd;

  constructor(private readonly output: ByteSink, private readonly input: ByteSource & { readonly available: number }, private readonly inputReady: number) {
    this.#inputReady = new EventFd(inputReady);
  }

  activate(context: VirtioBackendContext): void {
    this.#ctx = context;
    context.watch(this.inputReady, () => {
      this.#inputReady.drain();
      this.#receive();
    });
    this.#receive();
  }

  process(queue: number): void {
    if (queue === RECEIVE_QUEUE) this.#receive();
    else if (queue === TRANSMIT_QUEUE) this.#transmit();
  }

  reset(): void {
    this.#ctx = undefined;
  }

  #transmit(): void {
    serveQueue(this.#ctx, TRANSMIT_QUEUE, (chain, q) => {
      for (const byte of q.readSegments(chain)) this.output.write(byte);
      return 0;
    });
  }

  /** Hands waiting input to the driver's receive buffers; a buffer is taken only when there is input. */
  #receive(): void {
    const ctx = this.#ctx;
    const q = ctx?.queues.get(RECEIVE_QUEUE);
    if (!ctx || !q) return;
    let delivered = false;
    while (this.input.available > 0) {
      const chain = q.pop();
      if (!chain) break;
      let written = 0;
      for (const s of chain.writable) {
        const n = this.input.read(ctx.memory.slice(s.address, s.length));
        written += n;
        if (n < s.length) break;
      }
      q.push(chain.head, written);
      delivered = true;
    }
    if (delivered) ctx.usedBuffers(RECEIVE_QUEUE);
  }
}
