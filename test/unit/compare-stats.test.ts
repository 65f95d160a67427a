// The statistics of `tsvmm compare`: median, quartiles (linear interpolation, R type 7), spread,
// paired ratios; and the line clock that timestamps a contender's output.

import { describe, expect, it } from 'vitest';
import { pairedRatios, median, quantile, summarize } from '../../src/compare/stats.js';
import { LineClock, selfTimedMs } from '../../src/compare/clock.js';

describe('median and quantiles', () => {
  it('takes the middle run, or the mean of the two middle ones', () => {
    expect(median([5])).toBe(5);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([10, 10, 10, 1000])).toBe(10);
  });

  it('interpolates quartiles between order statistics', () => {
    // R: quantile(c(1,2,3,4,5,6,7,8,9,10), c(.25,.75)) → 3.25 7.75
    const v = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(quantile(v, 0.25)).toBeCloseTo(3.25);
    expect(quantile(v, 0.75)).toBeCloseTo(7.75);
    expect(quantile(v, 0)).toBe(1);
    expect(quantile(v, 1)).toBe(10);
  });

  it('does not reorder its input', () => {
    const v = [3, 1, 2];
    median(v);
    expect(v).toEqual([3, 1, 2]);
  });

  it('refuses no runs and bad quantiles', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
    expect(() => quantile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('summaries', () => {
  it('gives median, quartiles, IQR, min, max and the relative spread', () => {
    const s = summarize([12, 10, 11, 13, 30]);
    expect(s).toEqual({ n: 5, median: 12, min: 10, max: 30, q1: 11, q3: 13, iqr: 2, relativeSpread: 2 / 12 });
  });

  it('gives one run a spread of zero', () => {
    expect(summarize([7])).toMatchObject({ n: 1, median: 7, q1: 7, q3: 7, iqr: 0, relativeSpread: 0, min: 7, max: 7 });
  });

  it('refuses runs that are not finite numbers', () => {
    expect(() => summarize([])).toThrow(RangeError);
    expect(() => summarize([1, Number.NaN])).toThrow(/not a finite number/);
    expect(() => summarize([1, Infinity])).toThrow(/not a finite number/);
  });

  it('pairs ratios round by round and skips a zero divisor', () => {
    expect(pairedRatios([2, 6, 9], [1, 3, 0])).toEqual([2, 2]);
    expect(pairedRatios([1, 2, 3], [1])).toEqual([1]);
  });
});

describe('the line clock', () => {
  it('stamps the first line matching each pattern, across chunk boundaries', async () => {
    const clock = new LineClock(['start', 'done']);
    const waiting = clock.wait('done', 1000, 'test');
    clock.feed('boot\nsta');
    expect(clock.firstLine?.line).toBe('boot');
    expect(clock.stamps.has('start')).toBe(false);
    clock.feed(Buffer.from('rt\r\n'));
    expect(clock.stamps.get('start')?.line).toBe('start');
    clock.feed('work: done ns=2500000\nwork: done again\n');
    const done = await waiting;
    expect(done.line).toBe('work: done ns=2500000');
    expect(clock.between('start', 'done', 'test')).toBeGreaterThanOrEqual(0);
    expect(selfTimedMs(clock, 'done', 'test')).toBe(2.5);
  });

  it('says what is missing', async () => {
    const clock = new LineClock(['start', 'done']);
    clock.feed('start\n');
    expect(() => clock.between('start', 'done', 'the VM')).toThrow('the VM: did not print "done"');
    expect(() => selfTimedMs(clock, 'start', 'x')).toThrow('x: no ns= in "start"');
    await expect(clock.wait('done', 10, 'the VM')).rejects.toThrow('the VM: no "done" after 10 ms');
  });
});
