// How virtio devices are described to the threads that run them: where each sits (MMIO window,
// interrupt line), its shared register file, its eventfds, and its backend's settings. All of it
// is plain data, so it crosses to worker threads by structured clone.

import type { VirtioDeviceInfo } from '../devices/virtio/mmio-transport.js';

export type VirtioBackendConfig =
  | { kind: 'block'; fd: number; size: number; readOnly: boolean; id: string }
  | { kind: 'net'; tap: number }
  | { kind: 'rng' }
  | { kind: 'console'; input: SharedArrayBuffer; inputReady: number; output: SharedArrayBuffer };

export interface VirtioSlot {
  /** For logs: "virtio-blk0 (disk.img)". */
  name: string;
  base: number;
  irq: number;
  info: VirtioDeviceInfo;
  state: SharedArrayBuffer;
  /** One eventfd per queue: KVM signals it when the driver writes the queue's index to QueueNotify. */
  queueFds: number[];
  /** KVM injects `irq` when this is signalled. */
  irqfd: number;
  backend: VirtioBackendConfig;
}
