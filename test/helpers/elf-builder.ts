// Builds small ELF64 images in memory, so tests can feed the loader good and broken kernels.

export interface TestSegment {
  paddr: number;
  data: Uint8Array;
  memSize?: number;
}

export interface TestElf {
  entry: number;
  segments: TestSegment[];
  pvhEntry?: number;
  machine?: number;
  elfClass?: number;
}

export function buildElf(spec: TestElf): Uint8Array {
  const phnum = spec.segments.length + (spec.pvhEntry !== undefined ? 1 : 0);
  const phoff = 64;
  let offset = phoff + phnum * 56;
  const note = spec.pvhEntry !== undefined ? pvhNote(spec.pvhEntry) : undefined;
  const noteOffset = offset;
  offset += note?.length ?? 0;
  const placed = spec.segments.map((s) => {
    const at = offset;
    offset += s.data.length;
    return { ...s, offset: at };
  });
  const image = new Uint8Array(offset);
  const v = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, spec.elfClass ?? 2, 1, 1], 0);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, spec.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(spec.entry), true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  let ph = phoff;
  const header = (type: number, fileOffset: number, paddr: number, fileSize: number, memSize: number) => {
    v.setUint32(ph, type, true);
    v.setBigUint64(ph + 8, BigInt(fileOffset), true);
    v.setBigUint64(ph + 16, BigInt(paddr), true);
    v.setBigUint64(ph + 24, BigInt(paddr), true);
    v.setBigUint64(ph + 32, BigInt(fileSize), true);
    v.setBigUint64(ph + 40, BigInt(memSize), true);
    ph += 56;
  };
  if (note) {
    header(4, noteOffset, 0, note.length, note.length);
    image.set(note, noteOffset);
  }
  for (const s of placed) {
    header(1, s.offset, s.paddr, s.data.length, s.memSize ?? s.data.length);
    image.set(s.data, s.offset);
  }
  return image;
}

function pvhNote(entry: number): Uint8Array {
  const note = new Uint8Array(12 + 4 + 4);
  const v = new DataView(note.buffer);
  v.setUint32(0, 4, true); // "Xen\0"
  v.setUint32(4, 4, true);
  v.setUint32(8, 18, true); // XEN_ELFNOTE_PHYS32_ENTRY
  note.set([0x58, 0x65, 0x6e, 0], 12);
  v.setUint32(16, entry, true);
  return note;
}
