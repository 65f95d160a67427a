// The byte layout of what crosses from TypeScript to the C helper (native/container-init.c): a
// layout is described once, here, as a value; TypeScript's types of the messages are inferred
// from it, the encoder and decoder below walk it, and wire-c.ts generates the helper's C structs
// and decoders from it (native/helper-wire.h). So there is one definition of the contract, and
// the helper needs no JSON reader.
//
// Encoding, little-endian: int = 8 bytes (signed; integers past 2^63 are unsigned 64-bit values,
// and 2^64 and above saturate to all ones, as RLIM_INFINITY is written); bool = 1 byte; str = u32
// length + bytes (no NUL inside); list = u32 count + items; opt = 1 byte present + item; struct =
// its fields in order. A frame = "TSVW", u32 layout hash, u32 kind, u32 body length, body.

import { fnv1a32 } from '../meta/fnv.js';

export type Layout =
  | { readonly kind: 'int' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'str' }
  | { readonly kind: 'list'; readonly of: Layout }
  | { readonly kind: 'opt'; readonly of: Layout }
  | StructLayout;

export interface StructLayout {
  readonly kind: 'struct';
  /** Its C type name. */
  readonly name: string;
  readonly fields: Readonly<Record<string, Layout>>;
}

export const int = { kind: 'int' } as const;
export const bool = { kind: 'bool' } as const;
export const str = { kind: 'str' } as const;
export const list = <T extends Layout>(of: T) => ({ kind: 'list', of }) as const;
export const opt = <T extends Layout>(of: T) => ({ kind: 'opt', of }) as const;
export const struct = <F extends Record<string, Layout>>(name: string, fields: F) => ({ kind: 'struct', name, fields }) as const;

type OptionalKeys<F> = { [K in keyof F]: F[K] extends { kind: 'opt' } ? K : never }[keyof F];
type Flatten<T> = { [K in keyof T]: T[K] };

/** The TypeScript value of a layout: an opt field is an optional property. */
export type Value<L> = L extends { kind: 'int' } ? number
  : L extends { kind: 'bool' } ? boolean
    : L extends { kind: 'str' } ? string
      : L extends { kind: 'list'; of: infer E } ? Value<E>[]
        : L extends { kind: 'opt'; of: infer E } ? Value<E> | undefined
          : L extends { kind: 'struct'; fields: infer F } ? Flatten<{ [K in Exclude<keyof F, OptionalKeys<F>>]: Value<F[K]> } & { [K in OptionalKeys<F>]?: Value<F[K]> }>
            : never;

export const FRAME_MAGIC = 'TSVW';
export const FRAME_HEADER = 16;

const layoutHashes = new WeakMap<readonly StructLayout[], number>();

/**
 * FNV-1a of the layouts' description: both sides refuse a frame of another build. Worked out once
 * per set of layouts (the description is a few kilobytes of JSON; every frame carries the hash).
 */
export function layoutHash(messages: readonly StructLayout[]): number {
  let h = layoutHashes.get(messages);
  if (h === undefined) layoutHashes.set(messages, h = fnv1a32(Buffer.from(JSON.stringify(messages))));
  return h;
}

const U64 = 1n << 64n;

class Writer {
  #buf = Buffer.alloc(4096);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.#buf.length * 2, this.length + n));
    this.#buf.copy(bigger, 0, 0, this.length);
    this.#buf = bigger;
  }

  u8(v: number): void {
    this.#room(1);
    this.#buf[this.length++] = v;
  }

  u32(v: number): void {
    this.#room(4);
    this.#buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }

  i64(v: bigint): void {
    this.#room(8);
    this.#buf.writeBigInt64LE(v, this.length);
    this.length += 8;
  }

  bytes(b: Buffer): void {
    this.#room(b.length);
    b.copy(this.#buf, this.length);
    this.length += b.length;
  }

  patchU32(at: number, v: number): void {
    this.#buf.writeUInt32LE(v, at);
  }

  done(): Buffer {
    return this.#buf.subarray(0, this.length);
  }
}

function encodeValue(w: Writer, layout: Layout, value: unknown, where: string): void {
  switch (layout.kind) {
    case 'int': {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${where}: ${String(value)} is not an integer`);
      const big = BigInt(value);
      // Nothing below int64's range has a meaning to saturate to (RLIM_INFINITY is at the top).
      if (big < -(1n << 63n)) throw new TypeError(`${where}: ${String(value)} is below the 64-bit range`);
      w.i64(BigInt.asIntN(64, big >= U64 ? U64 - 1n : big));
      return;
    }
    case 'bool':
      if (typeof value !== 'boolean') throw new TypeError(`${where}: ${String(value)} is not a boolean`);
      w.u8(value ? 1 : 0);
      return;
    case 'str': {
      if (typeof value !== 'string') throw new TypeError(`${where}: ${String(value)} is not a string`);
      const bytes = Buffer.from(value);
      if (bytes.includes(0)) throw new TypeError(`${where}: a NUL byte cannot cross to the helper`);
      w.u32(bytes.length);
      w.bytes(bytes);
      return;
    }
    case 'list':
      if (!Array.isArray(value)) throw new TypeError(`${where}: not a list`);
      w.u32(value.length);
      value.forEach((item, i) => encodeValue(w, layout.of, item, `${where}[${i}]`));
      return;
    case 'opt':
      w.u8(value === undefined ? 0 : 1);
      if (value !== undefined) encodeValue(w, layout.of, value, where);
      return;
    case 'struct': {
      if (typeof value !== 'object' || value === null) throw new TypeError(`${where}: not an object`);
      for (const [key, field] of Object.entries(layout.fields)) encodeValue(w, field, (value as Record<string, unknown>)[key], `${where}.${key}`);
      return;
    }
  }
}

/** A frame of message `layout` (its kind: its index among `messages`); typed by the caller's wrapper (plan-layout.ts). */
export function encodeFrame(messages: readonly StructLayout[], layout: StructLayout, value: unknown): Buffer {
  const kind = messages.indexOf(layout);
  if (kind < 0) throw new TypeError(`${layout.name} is not a message`);
  const w = new Writer();
  w.bytes(Buffer.from(FRAME_MAGIC));
  w.u32(layoutHash(messages));
  w.u32(kind);
  w.u32(0);
  encodeValue(w, layout, value, layout.name);
  w.patchU32(12, w.length - FRAME_HEADER);
  return w.done();
}

class Reader {
  at = 0;
  constructor(readonly buf: Buffer) {}

  #need(n: number): number {
    if (this.at + n > this.buf.length) throw new RangeError('truncated');
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(): number {
    return this.buf[this.#need(1)]!;
  }

  u32(): number {
    return this.buf.readUInt32LE(this.#need(4));
  }

  i64(): bigint {
    return this.buf.readBigInt64LE(this.#need(8));
  }

  bytes(n: number): Buffer {
    const at = this.#need(n);
    return this.buf.subarray(at, at + n);
  }
}

function decodeValue(r: Reader, layout: Layout): unknown {
  switch (layout.kind) {
    case 'int':
      return Number(r.i64());
    case 'bool':
      return r.u8() !== 0;
    case 'str':
      return r.bytes(r.u32()).toString('utf8');
    case 'list': {
      const n = r.u32();
      // Each item takes at least a byte: a count past what is left is damage (as the C decoder says).
      if (n > r.buf.length - r.at) throw new RangeError('a list longer than its frame');
      return Array.from({ length: n }, () => decodeValue(r, layout.of));
    }
    case 'opt':
      return r.u8() ? decodeValue(r, layout.of) : undefined;
    case 'struct':
      return Object.fromEntries(Object.entries(layout.fields).map(([key, field]) => [key, decodeValue(r, field)]));
  }
}

/** The value of a frame of `layout`; throws if it is of another kind, another build, or damaged. */
export function decodeFrame(messages: readonly StructLayout[], layout: StructLayout, frame: Buffer): unknown {
  const r = new Reader(frame);
  if (r.bytes(4).toString('latin1') !== FRAME_MAGIC) throw new RangeError('not a frame');
  if (r.u32() !== layoutHash(messages)) throw new RangeError('a frame of another build');
  if (r.u32() !== messages.indexOf(layout)) throw new RangeError(`not a ${layout.name}`);
  const length = r.u32();
  if (length !== frame.length - FRAME_HEADER) throw new RangeError('a frame of the wrong length');
  return decodeValue(r, layout);
}
