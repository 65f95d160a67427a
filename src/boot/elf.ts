// ELF kernel images: the header, PT_LOAD segments and the Xen PVH entry note. The file is
// untrusted: every offset and size is checked against the file before use. A 64-bit ELF may be
// entered at its ELF entry in long mode or at its PVH entry; a 32-bit ELF only at its PVH entry
// (32-bit protected mode, whatever the ELF class: QEMU boots these too).

import { TsvmmError } from '../errors.js';

export class KernelImageError extends TsvmmError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'KernelImageError';
  }
}

export interface ElfSegment {
  /** Guest-physical load address (p_paddr). */
  readonly paddr: number;
  readonly fileOffset: number;
  readonly fileSize: number;
  readonly memSize: number;
}

export interface ElfKernel {
  readonly entry: number;
  /** XEN_ELFNOTE_PHYS32_ENTRY, if the image has a PVH note. */
  readonly pvhEntry: number | undefined;
  readonly segments: readonly ElfSegment[];
}

const ELF_MAGIC = 0x464c457f; // "\x7fELF" little-endian
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const EM_386 = 3;
const ELFDATA2LSB = 1;
const EM_X86_64 = 62;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
/** Where the fields we read sit in each ELF class (elf(5)). */
const LAYOUT = {
  [ELFCLASS32]: { ehdr: 52, phdr: 32, entry: 24, phoff: 28, phentsize: 42, phnum: 44, pOffset: 4, pPaddr: 12, pFilesz: 16, pMemsz: 20, word: 4 },
  [ELFCLASS64]: { ehdr: 64, phdr: 56, entry: 24, phoff: 32, phentsize: 54, phnum: 56, pOffset: 8, pPaddr: 24, pFilesz: 32, pMemsz: 40, word: 8 },
} as const;
const MAX_PHDRS = 256;

export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && new DataView(image.buffer, image.byteOffset).getUint32(0, true) === ELF_MAGIC;
}

export function parseElf(image: Uint8Array, name = 'kernel'): ElfKernel {
  const fail = (what: string) => new KernelImageError('BAD_KERNEL', `${name}: ${what}`);
  if (image.length < LAYOUT[ELFCLASS32].ehdr || !isElf(image)) throw fail('not an ELF file');
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const elfClass = v.getUint8(4);
  if (elfClass !== ELFCLASS32 && elfClass !== ELFCLASS64) throw fail(`ELF class ${elfClass} is neither 32- nor 64-bit`);
  const L = LAYOUT[elfClass];
  if (image.length < L.ehdr) throw fail('not an ELF file (its header is cut short)');
  if (v.getUint8(5) !== ELFDATA2LSB) throw fail('not a little-endian ELF file');
  const type = v.getUint16(16, true);
  if (type !== ET_EXEC && type !== ET_DYN) throw fail(`ELF type ${type} is not an executable`);
  const machine = v.getUint16(18, true);
  if (machine !== EM_X86_64 && machine !== EM_386) throw fail(`ELF machine ${machine} is not x86-64 or i386`);
  const word = (at: number) => (L.word === 8 ? v.getBigUint64(at, true) : BigInt(v.getUint32(at, true)));

  const entry = safe(word(L.entry), 'entry point', fail);
  const phoff = safe(word(L.phoff), 'program header offset', fail);
  const phentsize = v.getUint16(L.phentsize, true);
  const phnum = v.getUint16(L.phnum, true);
  if (phnum === 0) throw fail('no program headers');
  if (phnum > MAX_PHDRS) throw fail(`${phnum} program headers is too many`);
  if (phentsize < L.phdr) throw fail(`program header size ${phentsize} is too small`);
  if (phoff + phnum * phentsize > image.length) throw fail('program headers extend past the end of the file');

  const segments: ElfSegment[] = [];
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const pType = v.getUint32(at, true);
    const offset = safe(word(at + L.pOffset), 'segment offset', fail);
    const paddr = safe(word(at + L.pPaddr), 'segment address', fail);
    const fileSize = safe(word(at + L.pFilesz), 'segment size', fail);
    const memSize = safe(word(at + L.pMemsz), 'segment size', fail);
    if ((pType === PT_LOAD || pType === PT_NOTE) && offset + fileSize > image.length) {
      throw fail(`segment ${i} extends past the end of the file`);
    }
    if (pType === PT_LOAD) {
      if (fileSize > memSize) throw fail(`segment ${i} has more file bytes than memory bytes`);
      if (memSize > 0) segments.push({ paddr, fileOffset: offset, fileSize, memSize });
    } else if (pType === PT_NOTE) {
      pvhEntry ??= findPvhEntry(v, offset, fileSize, (what) => fail(`note segment ${i}: ${what}`));
    }
  }
  if (segments.length === 0) throw fail('no loadable segments');
  if (elfClass === ELFCLASS32 && pvhEntry === undefined) {
    throw fail('a 32-bit ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): tsvmm enters ELF kernels through PVH, or 64-bit ones in long mode');
  }
  return { entry, pvhEntry, segments };
}

/**
 * Walks the notes of one PT_NOTE segment for a "Xen" note of type PHYS32_ENTRY. Notes that do
 * not fit their segment, or a PVH note whose entry is not a 4- or 8-byte value, are errors: a
 * kernel that meant to be entered through PVH must not be booted some other way instead.
 */
function findPvhEntry(v: DataView, offset: number, size: number, fail: (what: string) => Error): number | undefined {
  const align4 = (n: number) => (n + 3) & ~3;
  let at = offset;
  const end = offset + size;
  while (at < end) {
    if (at + 12 > end) throw fail(`a note header at file offset 0x${at.toString(16)} is cut short`);
    const nameSize = v.getUint32(at, true);
    const descSize = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + align4(nameSize);
    const next = descAt + align4(descSize);
    if (nameSize > size || descSize > size || next > end) {
      throw fail(`the note at file offset 0x${at.toString(16)} (name ${nameSize} bytes, description ${descSize}) does not fit its segment`);
    }
    const name = new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset + nameAt, Math.max(0, nameSize - 1)));
    if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) {
      if (descSize !== 4 && descSize !== 8) throw fail(`its PVH entry note holds ${descSize} bytes, not a 4- or 8-byte address`);
      const entry = descSize === 8 ? v.getBigUint64(descAt, true) : BigInt(v.getUint32(descAt, true));
      if (entry > 0xffffffffn) throw fail(`its PVH entry 0x${entry.toString(16)} is above 4 GiB, where 32-bit code cannot start`);
      return Number(entry);
    }
    at = next;
  }
  return undefined;
}

function safe(value: bigint, what: string, fail: (what: string) => Error): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} 0x${value.toString(16)} is out of range`);
  return Number(value);
}
