// The one way the CLI reads a number from a flag: `--cpus 2`, `--pids 100`, `--cpus 0.5`.
// yargs' own `type: 'number'` turns "abc" into NaN, "" into 0 and accepts "0x2" or "1e3"; here a
// flag's value is plain decimal digits (with one decimal point where fractions make sense), in a
// stated range, or the command ends with one line naming the flag and what it takes.

import { TsvmmError } from '../errors.js';

export interface NumberRule {
  /** Whole numbers only (the default), or a decimal fraction such as 0.5. */
  integer?: boolean;
  /** Smallest accepted value (default 0 for fractions, 1 for whole numbers). */
  min?: number;
  max?: number;
}

const WHOLE = /^[0-9]+$/;
const DECIMAL = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/**
 * Parses the value of `--flag` strictly; throws TsvmmError BAD_CONFIG naming the flag.
 * A number (a yargs default, a library caller) is checked the same way.
 */
export function parseNumberOption(flag: string, value: unknown, rule: NumberRule = {}): number {
  const integer = rule.integer ?? true;
  const min = rule.min ?? (integer ? 1 : 0);
  const kind = integer ? 'a whole number' : 'a number';
  // Quoted only where the value would not read as one word.
  const shown = typeof value === 'string' && /^\S+$/.test(value) ? value : JSON.stringify(value);
  const bad = (why: string) => new TsvmmError('BAD_CONFIG', `${flag} ${shown}: ${why}`);
  if (Array.isArray(value)) throw new TsvmmError('BAD_CONFIG', `${flag} is given ${value.length} times; give it once`);
  let n: number;
  if (typeof value === 'number') {
    n = value;
  } else if (typeof value === 'string') {
    if (value === '') throw new TsvmmError('BAD_CONFIG', `${flag} needs a value (${kind})`);
    if (!(integer ? WHOLE : DECIMAL).test(value)) throw bad(`not ${kind} (use decimal digits${integer ? '' : ', e.g. 0.5'})`);
    n = Number(value);
  } else {
    throw new TsvmmError('BAD_CONFIG', `${flag} needs a value (${kind})`);
  }
  if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) throw bad(`not ${kind}`);
  if (n < min) throw bad(`must be at least ${min}`);
  if (rule.max !== undefined && n > rule.max) throw bad(`must be at most ${rule.max}`);
  return n;
}

/**
 * A yargs option definition for a numeric flag read by parseNumberOption: `.option('cpus',
 * numberOption('cpus', { describe: ..., default: 1 }))`. The value arrives as a number.
 */
export function numberOption(name: string, options: NumberRule & { describe: string; default?: number }) {
  const { describe, default: defaultValue, ...rule } = options;
  return {
    type: 'string' as const,
    describe,
    ...(defaultValue === undefined ? {} : { default: defaultValue as unknown as string }),
    coerce: (value: unknown): number => parseNumberOption(`--${name}`, value, rule),
  };
}
