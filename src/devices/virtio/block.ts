// virtio-blk (device id 2) on a raw image file: reads and writes go straight between the file
// and guest memory (no copy), flush is fdatasync, get-id returns the disk's serial. Requests
// outside the disk, writes to a read-only disk and unknown types get an error status, not an
// exception: they are the guest's mistake, not ours.

import { fdatasyncSync, readSync, writeSync } from 'node:fs';
import { serveQueue, type VirtioBackend, type VirtioBackendContext } from './device.js';
import type { DescriptorChain, DescriptorSegment, VirtQueue } from './queue.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, type VirtioDeviceInfo } from './mmio-transport.js';

export const VIRTIO_ID_BLOCK = 2;
export const SECTOR_SIZE = 512;

const VIRTIO_BLK_F_SEG_MAX = 1n << 2n;
const VIRTIO_BLK_F_RO = 1n << 5n;
const VIRTIO_BLK_F_BLK_SIZE = 1n << 6n;
const VIRTIO_BLK_F_FLUSH = 1n << 9n;

const VIRTIO_BLK_T_IN = 0;
const VIRTIO_BLK_T_OUT = 1;
const VIRTIO_BLK_T_FLUSH = 4;
const VIRTIO_BLK_T_GET_ID = 8;
const VIRTIO_BLK_S_OK = 0;
const VIRTIO_BLK_S_IOERR = 1;
const VIRTIO_BLK_S_UNSUPP = 2;
const VIRTIO_BLK_ID_BYTES = 20;
const HEADER_SIZE = 16;
const QUEUE_SIZE = 256;
const SEG_MAX = QUEUE_SIZE - 2;

export interface BlockConfig {
  /** Disk size in bytes (whole sectors). */
  size: number;
  readOnly: boolean;
  /** Serial number for GET_ID, up to 20 bytes. */
  id: string;
}

export function blockInfo(config: BlockConfig): VirtioDeviceInfo {
  const space = new DataView(new ArrayBuffer(24));
  space.setBigUint64(0, BigInt(Math.floor(config.size / SECTOR_SIZE)), true); // capacity in sectors
  space.setUint32(12, SEG_MAX, true); //                                       seg_max
  space.setUint32(20, SECTOR_SIZE, true); //                                   blk_size
  const features = VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX
    | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH | (config.readOnly ? VIRTIO_BLK_F_RO : 0n);
  return { deviceId: VIRTIO_ID_BLOCK, features, queueSizes: [QUEUE_SIZE], config: new Uint8Array(space.buffer) };
}

export class BlockBackend implements VirtioBackend {
  #ctx: VirtioBackendContext | undefined;

  constructor(private readonly fd: number, private readonly config: BlockConfig) {}

  activate(context: VirtioBackendContext): void {
    this.#ctx = context;
  }

  process(queue: number): void {
    const ctx = this.#ctx;
    if (ctx) serveQueue(ctx, queue, (chain, q) => this.#request(ctx, q, chain));
  }

  reset(): void {
    this.#ctx = undefined;
  }

  /** Serves one request; returns the bytes written into the guest's buffers (data + status). */
  #request(ctx: VirtioBackendContext, q: VirtQueue, chain: DescriptorChain): number {
    const status = chain.writable.at(-1);
    if (!status || status.length < 1 || chain.readableLength < HEADER_SIZE) {
      ctx.log('request without header or status byte ignored');
      return 0;
    }
    const header = q.readSegments(chain, 0, HEADER_SIZE);
    const view = new DataView(header.buffer);
    const type = view.getUint32(0, true);
    const sector = view.getBigUint64(8, true);
    const data = { readable: dataSegments(chain.readable, HEADER_SIZE), writable: chain.writable.slice(0, -1) };
    let result = VIRTIO_BLK_S_OK;
    let written = 0;
    try {
      switch (type) {
        case VIRTIO_BLK_T_IN:
          written = this.#transfer(ctx, sector, data.writable, 'read');
          break;
        case VIRTIO_BLK_T_OUT:
          if (this.config.readOnly) result = VIRTIO_BLK_S_IOERR;
          else this.#transfer(ctx, sector, data.readable, 'write');
          break;
        case VIRTIO_BLK_T_FLUSH:
          if (!this.config.readOnly) fdatasyncSync(this.fd);
          break;
        case VIRTIO_BLK_T_GET_ID: {
          // The id fills the data buffers (at most 20 bytes) and must not run into the status byte.
          const id = Buffer.alloc(Math.min(VIRTIO_BLK_ID_BYTES, chain.writableLength - 1));
          id.write(this.config.id, 'latin1');
          written = q.writeSegments(chain, id);
          break;
        }
        default:
          result = VIRTIO_BLK_S_UNSUPP;
      }
    } catch (error) {
      if (!(error instanceof RangeError) && !(error as NodeJS.ErrnoException).code) throw error;
      ctx.log(`request type ${type} at sector ${sector} failed: ${(error as Error).message}`);
      result = VIRTIO_BLK_S_IOERR;
    }
    ctx.memory.writeU8(status.address + status.length - 1, result);
    return written + 1;
  }

  /** Moves whole segments between the image and guest memory; returns the bytes moved. */
  #transfer(ctx: VirtioBackendContext, sector: bigint, segments: readonly DescriptorSegment[], direction: 'read' | 'write'): number {
    const total = segments.reduce((sum, s) => sum + s.length, 0);
    const start = sector * BigInt(SECTOR_SIZE);
    if (total % SECTOR_SIZE !== 0 || start + BigInt(total) > BigInt(this.config.size)) {
      throw new RangeError(`${total} bytes at sector ${sector} fall outside the ${this.config.size}-byte disk`);
    }
    let position = Number(start);
    for (const s of segments) {
      // A read from the disk writes guest memory (slice marks it for diff snapshots); a write only reads it.
      const buffer = direction === 'read' ? ctx.memory.slice(s.address, s.length) : ctx.memory.readView(s.address, s.length);
      const moved = direction === 'read' ? readSync(this.fd, buffer, 0, s.length, position) : writeSync(this.fd, buffer, 0, s.length, position);
      if (moved !== s.length) throw new RangeError(`short ${direction} at byte ${position}`);
      position += s.length;
    }
    return direction === 'read' ? total : 0;
  }
}

/** The segments after the first `skip` bytes (the data after a request header). */
function dataSegments(segments: readonly DescriptorSegment[], skip: number): DescriptorSegment[] {
  const out: DescriptorSegment[] = [];
  for (const s of segments) {
    if (skip >= s.length) {
      skip -= s.length;
      continue;
    }
    out.push({ address: s.address + skip, length: s.length - skip });
    skip = 0;
  }
  return out;
}
