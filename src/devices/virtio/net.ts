// virtio-net (device id 1) on a tap device: frames the driver transmits are written to the tap,
// frames read from the tap fill the buffers it posts for receiving. No offloads: every frame
// carries a plain virtio_net_hdr (12 bytes with VIRTIO_F_VERSION_1) and nothing else.

import { readSync, writeSync } from 'node:fs';
import { serveQueue, type VirtioBackend, type VirtioBackendContext } from './device.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, type VirtioDeviceInfo } from './mmio-transport.js';

export const VIRTIO_ID_NET = 1;
const VIRTIO_NET_F_MAC = 1n << 5n;
const RECEIVE_QUEUE = 0;
const TRANSMIT_QUEUE = 1;
export const VIRTIO_NET_HDR_SIZE = 12;
/** The largest frame a tap hands us without offloads: 64 KiB plus an Ethernet header. */
const MAX_FRAME = 65536 + 14;

export function netInfo(mac: Uint8Array): VirtioDeviceInfo {
  return {
    deviceId: VIRTIO_ID_NET,
    features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX,
    queueSizes: [256, 256],
    config: Uint8Array.from(mac.subarray(0, 6)),
  };
}

export class NetBackend implements VirtioBackend {
  #ctx: VirtioBackendContext | undefined;
  readonly #frame = Buffer.alloc(MAX_FRAME);
  /** A frame read from the tap that waits for the driver to post a receive buffer. */
  #pending: Buffer | undefined;

  constructor(private readonly tap: number) {}

  activate(context: VirtioBackendContext): void {
    this.#ctx = context;
    context.watch(this.tap, () => this.#receive());
  }

  process(queue: number): void {
    if (queue === TRANSMIT_QUEUE) this.#transmit();
    else if (queue === RECEIVE_QUEUE) {
      // New buffers: take frames again if we had stopped for lack of them.
      this.#ctx?.watch(this.tap, () => this.#receive());
      this.#receive();
    }
  }

  reset(): void {
    this.#ctx = undefined;
    this.#pending = undefined;
  }

  #transmit(): void {
    const ctx = this.#ctx;
    serveQueue(ctx, TRANSMIT_QUEUE, (chain, q) => {
      const length = chain.readableLength - VIRTIO_NET_HDR_SIZE;
      if (length <= 0 || length > MAX_FRAME) return 0;
      try {
        writeSync(this.tap, q.readSegments(chain, VIRTIO_NET_HDR_SIZE, length));
      } catch (error) {
        ctx?.log(`frame of ${length} bytes dropped: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      return 0;
    });
  }

  #receive(): void {
    const ctx = this.#ctx;
    const q = ctx?.queues.get(RECEIVE_QUEUE);
    if (!ctx || !q) return;
    let delivered = false;
    for (;;) {
      const frame = this.#pending ?? this.#readFrame();
      if (!frame) break;
      const chain = q.pop();
      if (!chain) {
        // No buffer: keep the frame and stop watching the tap until the driver posts more.
        this.#pending = frame;
        ctx.unwatch(this.tap);
        break;
      }
      this.#pending = undefined;
      if (chain.writableLength < VIRTIO_NET_HDR_SIZE + frame.length) {
        ctx.log(`frame of ${frame.length} bytes dropped: receive buffer holds ${chain.writableLength}`);
        q.push(chain.head, 0);
      } else {
        const header = new Uint8Array(VIRTIO_NET_HDR_SIZE);
        header[10] = 1; // num_buffers: the frame fits in this one chain
        q.writeSegments(chain, header);
        q.writeSegments(chain, frame, VIRTIO_NET_HDR_SIZE);
        q.push(chain.head, VIRTIO_NET_HDR_SIZE + frame.length);
      }
      delivered = true;
    }
    if (delivered) ctx.usedBuffers(RECEIVE_QUEUE);
  }

  #readFrame(): Buffer | undefined {
    try {
      const n = readSync(this.tap, this.#frame, 0, MAX_FRAME, null);
      return n > 0 ? Buffer.from(this.#frame.subarray(0, n)) : undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN') {
        // The tap went away or down: say so once and stop reading it.
        this.#ctx?.log(`cannot read from the tap: ${code ?? (error as Error).message}`);
        this.#ctx?.unwatch(this.tap);
      }
      return undefined;
    }
  }
}
