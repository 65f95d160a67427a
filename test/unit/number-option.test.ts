import { describe, expect, it } from 'vitest';
import { parseNumberOption } from '../../src/cli/number-option.js';

describe('CLI number options', () => {
  it('takes plain decimal whole numbers', () => {
    expect(parseNumberOption('--cpus', '2')).toBe(2);
    expect(parseNumberOption('--cpus', '010')).toBe(10);
    expect(parseNumberOption('--cpus', 4)).toBe(4);
  });

  it('refuses what yargs\' number type lets through, naming the flag', () => {
    expect(() => parseNumberOption('--cpus', 'abc')).toThrow('--cpus abc: not a whole number');
    expect(() => parseNumberOption('--cpus', '')).toThrow('--cpus needs a value (a whole number)');
    for (const value of ['0x2', '1e3', ' 2', '2 ', '+2', '-1', '1.5', 'Infinity', '2abc']) {
      expect(() => parseNumberOption('--cpus', value), value).toThrow(/^--cpus \S+: not a whole number|^--cpus " 2"|^--cpus "2 "/);
    }
    expect(() => parseNumberOption('--cpus', '0')).toThrow('--cpus 0: must be at least 1');
    expect(() => parseNumberOption('--cpus', ['1', '2'])).toThrow('--cpus is given 2 times; give it once');
    expect(() => parseNumberOption('--pids', '99999999999999999999')).toThrow(/not a whole number/);
  });

  it('takes fractions where the rule allows them, within its range', () => {
    expect(parseNumberOption('--cpus', '0.5', { integer: false })).toBe(0.5);
    expect(parseNumberOption('--cpus', '.5', { integer: false })).toBe(0.5);
    expect(() => parseNumberOption('--cpus', '1.2.3', { integer: false })).toThrow(/not a number/);
    expect(() => parseNumberOption('--stop-timeout', '100', { min: 0, max: 60 })).toThrow('must be at most 60');
    expect(parseNumberOption('--stop-timeout', '0', { min: 0 })).toBe(0);
  });
});
