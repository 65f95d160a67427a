// virtio-rng (device id 4): the driver posts buffers, we fill them from the host's CSPRNG.

import { randomFillSync } from 'node:crypto';
import { serveQueue, type VirtioBackend, type VirtioBackendContext } from './device.js';
import { VIRTIO_F_VERSION_1, type VirtioDeviceInfo } from './mmio-transport.js';

export const VIRTIO_ID_RNG = 4;
const REQUEST_QUEUE = 0;
/** How much one request may take: a guest cannot make us generate gigabytes at once. */
const MAX_REQUEST = 64 * 1024;

export function rngInfo(): VirtioDeviceInfo {
  return { deviceId: VIRTIO_ID_RNG, features: VIRTIO_F_VERSION_1, queueSizes: [256], config: new Uint8Array(0) };
}

export class RngBackend implements VirtioBackend {
  #ctx: VirtioBackendContext | undefined;

  activate(context: VirtioBackendContext): void {
    this.#ctx = context;
  }

  process(queue: number): void {
    const memory = this.#ctx?.memory;
    if (queue !== REQUEST_QUEUE || !memory) return;
    serveQueue(this.#ctx, queue, (chain) => {
      let written = 0;
      for (const segment of chain.writable) {
        const length = Math.min(segment.length, MAX_REQUEST - written);
        if (length <= 0) break;
        randomFillSync(memory.slice(segment.address, length));
        written += length;
      }
      return written;
    });
  }

  reset(): void {
    this.#ctx = undefined;
  }
}
