// ELF64 kernel images: the header, PT_LOAD segments and the Xen PVH entry note. The file is
// untrusted: every offset and size is checked against the file before use.

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
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EM_X86_64 = 62;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const MAX_PHDRS = 256;

export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && new DataView(image.buffer, image.byteOffset).getUint32(0, true) === ELF_MAGIC;
}

export function parseElf(image: Uint8Array, name = 'kernel'): ElfKernel {
  const fail = (what: string) => new KernelImageError('BAD_KERNEL', `${name}: ${what}`);
  if (image.length < EHDR_SIZE || !isElf(image)) throw fail('not an ELF file');
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (v.getUint8(4) !== ELFCLASS64) throw fail('not a 64-bit ELF file');
  if (v.getUint8(5) !== ELFDATA2LSB) throw fail('not a little-endian ELF file');
  const type = v.getUint16(16, true);
  if (type !== ET_EXEC && type !== ET_DYN) throw fail(`ELF type ${type} is not an executable`);
  if (v.getUint16(18, true) !== EM_X86_64) throw fail(`ELF machine ${v.getUint16(18, true)} is not x86-64`);

  const entry = safe(v.getBigUint64(24, true), 'entry point', fail);
  const phoff = safe(v.getBigUint64(32, true), 'program header offset', fail);
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phnum === 0) throw fail('no program headers');
  if (phnum > MAX_PHDRS) throw fail(`${phnum} program headers is too many`);
  if (phentsize < PHDR_SIZE) throw fail(`program header size ${phentsize} is too small`);
  if (phoff + phnum * phentsize > image.length) throw fail('program headers extend past the end of the file');

  const segments: ElfSegment[] = [];
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const pType = v.getUint32(at, true);
    const offset = safe(v.getBigUint64(at + 8, true), 'segment offset', fail);
    const paddr = safe(v.getBigUint64(at + 24, true), 'segment address', fail);
    const fileSize = safe(v.getBigUint64(at + 32, true), 'segment size', fail);
    const memSize = safe(v.getBigUint64(at + 40, true), 'segment size', fail);
    if ((pType === PT_LOAD || pType === PT_NOTE) && offset + fileSize > image.length) {
      throw fail(`segment ${i} extends past the end of the file`);
    }
    if (pType === PT_LOAD) {
      if (fileSize > memSize) throw fail(`segment ${i} has more file bytes than memory bytes`);
      if (memSize > 0) segments.push({ paddr, fileOffset: offset, fileSize, memSize });
    } else if (pType === PT_NOTE) {
      pvhEntry ??= findPvhEntry(v, offset, fileSize);
    }
  }
  if (segments.length === 0) throw fail('no loadable segments');
  return { entry, pvhEntry, segments };
}

/** Walks the notes of one PT_NOTE segment for a "Xen" note of type PHYS32_ENTRY. */
function findPvhEntry(v: DataView, offset: number, size: number): number | undefined {
  const align4 = (n: number) => (n + 3) & ~3;
  let at = offset;
  const end = offset + size;
  while (at + 12 <= end) {
    const nameSize = v.getUint32(at, true);
    const descSize = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + align4(nameSize);
    const next = descAt + align4(descSize);
    if (nameSize > size || descSize > size || next > end) return undefined;
    const name = new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset + nameAt, Math.max(0, nameSize - 1)));
    if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY && descSize >= 4) {
      return descSize >= 8 ? Number(v.getBigUint64(descAt, true) & 0xffffffffn) : v.getUint32(descAt, true);
    }
    at = next;
  }
  return undefined;
}

function safe(value: bigint, what: string, fail: (what: string) => Error): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} 0x${value.toString(16)} is out of range`);
  return Number(value);
}
