// One save/restore contract for every device whose state a snapshot keeps (Firecracker's Persist):
// save() returns JSON-safe State; restore(state) takes back a State. A snapshot file is untrusted,
// so what comes out of it is `unknown` until the device's StateReader has checked every field: a
// restore never casts, and a bad field is one clear error naming where it is, not a device that
// misbehaves later.

import { TsvmmError } from '../errors.js';

export interface Persist<State> {
  /** The device's state, JSON-safe; call only while nothing else touches the device. */
  save(): State;
  /** Continues from `state`, which a StateReader has checked. */
  restore(state: State): void;
}

export class DeviceStateError extends TsvmmError {
  constructor(message: string) {
    super('BAD_SNAPSHOT', message);
    this.name = 'DeviceStateError';
  }
}

/** Checks an untrusted value and returns it typed; `where` names it in the error ("legacy.serial.ier"). */
export type StateReader<T> = (value: unknown, where: string) => T;

const fail = (where: string, what: string, value: unknown): never => {
  const shown = JSON.stringify(value);
  throw new DeviceStateError(`device state ${where}: ${what}, not ${shown === undefined ? 'missing' : shown.slice(0, 40)}`);
};

/** An integer in [min, max]. */
export function int(min: number, max: number): StateReader<number> {
  return (value, where) => (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
    ? value : fail(where, `an integer from ${min} to ${max}`, value));
}

/** A finite number. */
export const finite: StateReader<number> = (value, where) => (typeof value === 'number' && Number.isFinite(value)
  ? value : fail(where, 'a finite number', value));

export const bool: StateReader<boolean> = (value, where) => (typeof value === 'boolean' ? value : fail(where, 'true or false', value));

/** Absent (or null) as undefined, else `read`. */
export function optional<T>(read: StateReader<T>): StateReader<T | undefined> {
  return (value, where) => (value === undefined || value === null ? undefined : read(value, where));
}

/** An array of at most `maxLength` elements, each read by `read`. */
export function array<T>(read: StateReader<T>, maxLength: number): StateReader<T[]> {
  return (value, where) => {
    if (!Array.isArray(value) || value.length > maxLength) return fail(where, `an array of at most ${maxLength} elements`, value);
    return value.map((v, i) => read(v, `${where}[${i}]`));
  };
}

/** A pair. */
export function tuple<A, B>(a: StateReader<A>, b: StateReader<B>): StateReader<[A, B]> {
  return (value, where) => {
    if (!Array.isArray(value) || value.length !== 2) return fail(where, 'a pair', value);
    return [a(value[0], `${where}[0]`), b(value[1], `${where}[1]`)];
  };
}

type Shape = Record<string, StateReader<unknown>>;
type Read<S extends Shape> = { [K in keyof S]: ReturnType<S[K]> };

/** An object with exactly the fields of `shape` that it reads (others are ignored). */
export function object<S extends Shape>(shape: S): StateReader<Read<S>> {
  return (value, where) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(where, 'an object', value);
    const record = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, read] of Object.entries(shape)) out[key] = read(Object.hasOwn(record, key) ? record[key] : undefined, `${where}.${key}`);
    return out as Read<S>;
  };
}

export const byte = int(0, 0xff);
export const u16 = int(0, 0xffff);
