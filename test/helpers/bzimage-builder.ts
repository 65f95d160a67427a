// Builds small bzImage files in memory: a setup header as the spec lays it out, setup sectors and
// a protected-mode part, so tests can feed the loader good and broken Linux kernels.

export interface TestBzImage {
  version?: number;
  setupSects?: number;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  prefAddress?: number;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** Bytes of protected-mode kernel (the 64-bit entry is at 0x200 in it). */
  protectedModeSize?: number;
}

export function buildBzImage(spec: TestBzImage = {}): Uint8Array {
  const setupSects = spec.setupSects ?? 4;
  const pmSize = spec.protectedModeSize ?? 0x4000;
  const pmOffset = ((setupSects || 4) + 1) * 512;
  const image = new Uint8Array(pmOffset + pmSize);
  const v = new DataView(image.buffer);
  v.setUint8(0x1f1, setupSects);
  v.setUint32(0x1f4, pmSize / 16, true); // syssize
  v.setUint16(0x1fa, 0xffff, true); // vid_mode "normal"
  v.setUint16(0x1fe, 0xaa55, true);
  v.setUint8(0x200, 0xeb); // jmp over the header, which ends at 0x26c (kernel_info_offset's end)
  v.setUint8(0x201, 0x26c - 0x202);
  v.setUint32(0x202, 0x53726448, true); // "HdrS"
  v.setUint16(0x206, spec.version ?? 0x020f, true);
  v.setUint16(0x20e, 0x3000, true); // kernel_version, as the kernel sets it
  v.setUint8(0x211, spec.loadflags ?? 0x01);
  v.setUint32(0x214, 0x100000, true); // code32_start
  v.setUint16(0x224, 0x5be0, true); // heap_end_ptr, as a real kernel ships it
  v.setUint32(0x22c, spec.initrdAddrMax ?? 0x7fffffff, true);
  v.setUint32(0x230, spec.kernelAlignment ?? 0x200000, true);
  v.setUint8(0x234, spec.relocatable ?? true ? 1 : 0);
  v.setUint8(0x235, 21);
  v.setUint16(0x236, spec.xloadflags ?? 0x7f, true);
  v.setUint32(0x238, spec.cmdlineSize ?? 0x7ff, true);
  v.setBigUint64(0x258, BigInt(spec.prefAddress ?? 0x1000000), true);
  v.setUint32(0x260, spec.initSize ?? 0x400000, true);
  image[0x1ef] = 0xff; // sentinel, as header.S sets it: a loader must not copy it
  image[pmOffset] = 0xfa; // startup_32: cli
  image[pmOffset + 0x200] = 0xfa; // startup_64: cli
  return image;
}
