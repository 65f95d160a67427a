// The statistics of `tsvmm compare`: every figure is a list of runs, summed up by its median and
// spread (quartiles, interquartile range, min and max). Quartiles interpolate linearly between
// the sorted runs (the method of R's default, type 7), so one run gives a spread of zero.

export interface Summary {
  /** How many runs. */
  n: number;
  median: number;
  min: number;
  max: number;
  /** First and third quartiles. */
  q1: number;
  q3: number;
  /** q3 − q1. */
  iqr: number;
  /** iqr / |median| (0 when the median is 0): the spread relative to the figure. */
  relativeSpread: number;
}

/** The p-quantile (0 ≤ p ≤ 1) of `values`, interpolated linearly between order statistics. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('quantile of no values');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile ${p} is not in [0, 1]`);
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError('a summary needs at least one run');
  for (const v of values) if (!Number.isFinite(v)) throw new RangeError(`a run is not a finite number: ${v}`);
  const med = median(values);
  const q1 = quantile(values, 0.25);
  const q3 = quantile(values, 0.75);
  return {
    n: values.length,
    median: med,
    min: Math.min(...values),
    max: Math.max(...values),
    q1,
    q3,
    iqr: q3 - q1,
    relativeSpread: med === 0 ? 0 : (q3 - q1) / Math.abs(med),
  };
}

/** Per-run ratios a[i] / b[i] of two contenders measured in the same rounds. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (b[i] !== 0) out.push(a[i]! / b[i]!);
  return out;
}

/** The smallest of 1, 2, 5 × 10^k at or above `x` (a chart's top, or its tick step, that reads well: the dashboard's charts, the report's axes). */
export function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(x));
  for (const step of [1, 2, 5, 10]) if (step * power >= x * (1 - 1e-9)) return step * power;
  return 10 * power;
}
