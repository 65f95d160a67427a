// A small declarative codec for C structures. Every field carries its byte offset explicitly, as
// written in the kernel header; test/unit/kvm-structs.test.ts compiles a C program that prints
// offsetof() for each field and checks these tables against it, so a wrong offset cannot hide.

export interface Codec<T> {
  readonly size: number;
  read(view: DataView, offset: number): T;
  write(view: DataView, offset: number, value: T): void;
}

export const u8: Codec<number> = {
  size: 1,
  read: (v, o) => v.getUint8(o),
  write: (v, o, x) => v.setUint8(o, x),
};

export const u16: Codec<number> = {
  size: 2,
  read: (v, o) => v.getUint16(o, true),
  write: (v, o, x) => v.setUint16(o, x, true),
};

export const u32: Codec<number> = {
  size: 4,
  read: (v, o) => v.getUint32(o, true),
  write: (v, o, x) => v.setUint32(o, x, true),
};

export const i32: Codec<number> = {
  size: 4,
  read: (v, o) => v.getInt32(o, true),
  write: (v, o, x) => v.setInt32(o, x, true),
};

export const u64: Codec<bigint> = {
  size: 8,
  read: (v, o) => v.getBigUint64(o, true),
  write: (v, o, x) => v.setBigUint64(o, BigInt.asUintN(64, x), true),
};

export function array<T>(element: Codec<T>, length: number): Codec<T[]> {
  return {
    size: element.size * length,
    read(v, o) {
      const out: T[] = [];
      for (let i = 0; i < length; i++) out.push(element.read(v, o + i * element.size));
      return out;
    },
    write(v, o, values) {
      if (values.length !== length) {
        throw new RangeError(`expected ${length} elements, got ${values.length}`);
      }
      values.forEach((x, i) => element.write(v, o + i * element.size, x));
    },
  };
}

export function bytes(length: number): Codec<Uint8Array> {
  return {
    size: length,
    read: (v, o) => new Uint8Array(v.buffer, v.byteOffset + o, length).slice(),
    write(v, o, value) {
      if (value.length > length) throw new RangeError(`expected at most ${length} bytes, got ${value.length}`);
      const target = new Uint8Array(v.buffer, v.byteOffset + o, length);
      target.fill(0);
      target.set(value);
    },
  };
}

type FieldTable = Record<string, readonly [offset: number, codec: Codec<unknown>]>;

export type StructValue<F extends FieldTable> = {
  -readonly [K in keyof F]: F[K] extends readonly [number, Codec<infer T>] ? T : never;
};

export interface StructCodec<F extends FieldTable> extends Codec<StructValue<F>> {
  readonly name: string;
  readonly fields: F;
  /** A value with every field zero. */
  zero(): StructValue<F>;
  encode(value: StructValue<F>): Uint8Array;
  decode(data: Uint8Array | DataView, offset?: number): StructValue<F>;
}

/** Declares a C structure: its name (for errors and the layout test), size and fields. */
export function struct<F extends FieldTable>(name: string, size: number, fields: F): StructCodec<F> {
  for (const [field, [offset, codec]] of Object.entries(fields)) {
    if (offset < 0 || offset + codec.size > size) {
      throw new RangeError(`${name}.${field} at ${offset} (+${codec.size}) does not fit in ${size} bytes`);
    }
  }
  const entries = Object.entries(fields);
  const codec: StructCodec<F> = {
    name,
    size,
    fields,
    read(v, o) {
      const out: Record<string, unknown> = {};
      for (const [field, [offset, c]] of entries) out[field] = c.read(v, o + offset);
      return out as StructValue<F>;
    },
    write(v, o, value) {
      for (const [field, [offset, c]] of entries) c.write(v, o + offset, (value as Record<string, unknown>)[field]);
    },
    zero() {
      return codec.decode(new Uint8Array(size));
    },
    encode(value) {
      const out = new Uint8Array(size);
      codec.write(new DataView(out.buffer), 0, value);
      return out;
    },
    decode(data, offset = 0) {
      const view = data instanceof DataView ? data : new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (offset + size > view.byteLength) {
        throw new RangeError(`${name} needs ${size} bytes at offset ${offset}, have ${view.byteLength}`);
      }
      return codec.read(view, offset);
    },
  };
  return codec;
}
