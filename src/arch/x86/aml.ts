// A small ACPI Machine Language encoder (ACPI 6.5, chapter 20 "ACPI Machine Language
// Specification", and 6.4 "Resource Data Types"): just the terms tsvmm's DSDT is made of, each a
// function returning its bytes, so a table reads like the ASL it stands for.

export type Aml = readonly number[];

const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const NAME_OP = 0x08;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const STRING_PREFIX = 0x0d;
const QWORD_PREFIX = 0x0e;
const SCOPE_OP = 0x10;
const BUFFER_OP = 0x11;
const PACKAGE_OP = 0x12;
const EXT_OP_PREFIX = 0x5b;
const DEVICE_OP = 0x82;
const ROOT_CHAR = 0x5c;

/**
 * PkgLength (20.2.4): the length of what follows including the PkgLength bytes themselves; one
 * byte up to 63, otherwise a lead byte (count of extra bytes in bits 7-6, low nibble in bits 3-0)
 * and up to three more bytes.
 */
export function pkgLength(contentLength: number): Aml {
  if (contentLength + 1 < 0x40) return [contentLength + 1];
  for (let extra = 1; extra <= 3; extra++) {
    const total = contentLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const out = [(extra << 6) | (total & 0x0f)];
      for (let i = 0; i < extra; i++) out.push((total >>> (4 + 8 * i)) & 0xff);
      return out;
    }
  }
  throw new RangeError(`AML package of ${contentLength} bytes is too long`);
}

/** A NameString: "\\_SB_" or "VR00"; segments are 4 characters, padded with '_'. */
export function nameString(name: string): Aml {
  const rooted = name.startsWith('\\');
  const segments = (rooted ? name.slice(1) : name).split('.').filter(Boolean);
  const out: number[] = rooted ? [ROOT_CHAR] : [];
  if (segments.length === 0) return [...out, ZERO_OP]; // NullName
  if (segments.length === 2) out.push(0x2e); // DualNamePrefix
  else if (segments.length > 2) out.push(0x2f, segments.length); // MultiNamePrefix
  for (const segment of segments) {
    if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(segment)) throw new RangeError(`not an ACPI name segment: ${segment}`);
    out.push(...Buffer.from(segment.padEnd(4, '_'), 'latin1'));
  }
  return out;
}

/** The shortest integer encoding (ZeroOp, OneOp, Byte/Word/DWord/QWordConst). */
export function integer(value: number): Aml {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not an AML integer: ${value}`);
  if (value === 0) return [ZERO_OP];
  if (value === 1) return [ONE_OP];
  if (value <= 0xff) return [BYTE_PREFIX, value];
  if (value <= 0xffff) return [WORD_PREFIX, ...le(value, 2)];
  if (value <= 0xffffffff) return [DWORD_PREFIX, ...le(value, 4)];
  return [QWORD_PREFIX, ...le(value % 2 ** 32, 4), ...le(Math.floor(value / 2 ** 32), 4)];
}

export function string(value: string): Aml {
  if ([...value].some((c) => c.charCodeAt(0) < 1 || c.charCodeAt(0) > 0x7f)) throw new RangeError(`not an AML ASCII string: ${JSON.stringify(value)}`);
  return [STRING_PREFIX, ...Buffer.from(value, 'latin1'), 0];
}

/** EisaId ("PNP0303"): three letters in 5 bits each and four hex digits, stored big-endian. */
export function eisaId(id: string): Aml {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`not an EISA id: ${id}`);
  const letters = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const value = ((letters[0]! << 26) | (letters[1]! << 21) | (letters[2]! << 16) | parseInt(id.slice(3), 16)) >>> 0;
  const swapped = ((value & 0xff) << 24 | (value & 0xff00) << 8 | (value >>> 8) & 0xff00 | value >>> 24) >>> 0;
  return [DWORD_PREFIX, ...le(swapped, 4)];
}

export function name(nameSeg: string, value: Aml): Aml {
  return [NAME_OP, ...nameString(nameSeg), ...value];
}

export function scope(path: string, ...terms: Aml[]): Aml {
  const body = [...nameString(path), ...terms.flat()];
  return [SCOPE_OP, ...pkgLength(body.length), ...body];
}

export function device(nameSeg: string, ...terms: Aml[]): Aml {
  const body = [...nameString(nameSeg), ...terms.flat()];
  return [EXT_OP_PREFIX, DEVICE_OP, ...pkgLength(body.length), ...body];
}

export function buffer(bytes: Aml): Aml {
  const body = [...integer(bytes.length), ...bytes];
  return [BUFFER_OP, ...pkgLength(body.length), ...body];
}

/** Package of integers, e.g. the \_S5 sleep-type package. */
export function packageOf(...elements: Aml[]): Aml {
  const body = [elements.length, ...elements.flat()];
  return [PACKAGE_OP, ...pkgLength(body.length), ...body];
}

// Resource descriptors (6.4), as a ResourceTemplate's buffer holds them.

/** ResourceTemplate () { ... }: the descriptors, then an End Tag (checksum 0: "not checked"). */
export function resourceTemplate(...descriptors: Aml[]): Aml {
  return buffer([...descriptors.flat(), 0x79, 0x00]);
}

/** IO (Decode16, base, base, 1, length): a small I/O port descriptor at a fixed address. */
export function ioPort(base: number, length: number): Aml {
  const DECODE16 = 1;
  return [0x47, DECODE16, ...le(base, 2), ...le(base, 2), 1, length];
}

/** IRQNoFlags () { irq }: an ISA interrupt, edge-triggered and active high. */
export function irqNoFlags(irq: number): Aml {
  if (irq > 15) throw new RangeError(`IRQNoFlags takes an ISA IRQ (0-15), not ${irq}`);
  return [0x22, ...le(1 << irq, 2)];
}

/** Memory32Fixed (ReadWrite, base, length). */
export function memory32Fixed(base: number, length: number): Aml {
  const READ_WRITE = 1;
  return [0x86, ...le(9, 2), READ_WRITE, ...le(base, 4), ...le(length, 4)];
}

/** Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }: an extended interrupt. */
export function edgeInterrupt(gsi: number): Aml {
  const CONSUMER = 1 << 0;
  const EDGE = 1 << 1;
  return [0x89, ...le(6, 2), CONSUMER | EDGE, 1, ...le(gsi, 4)];
}

function le(value: number, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Math.floor(value / 2 ** (8 * i)) & 0xff);
}
