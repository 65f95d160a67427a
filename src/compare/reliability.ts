// When a figure of `tsvmm compare` should not be trusted, said in the report next to it: runs
// that spread widely, a machine that was busy while they ran (other processes compete for the same
// CPUs; this project's machines are shared), or a contender "faster than native" by more than
// noise allows for work that cannot be faster than native.

import { readFileSync } from 'node:fs';
import { SUBJECT_LABEL, type Measurement } from './model.js';

/** The interquartile range over the median above which a figure's runs disagree too much. */
export const SPREAD_LIMIT = 0.25;
/** The 1-minute load average per CPU above which the machine was busy. */
export const LOAD_LIMIT = 0.75;
/** A ratio to native above which compute work "faster than native" is noise. */
export const FASTER_LIMIT = 1.1;

/** The 1-minute load average (/proc/loadavg), or null where it cannot be read. */
export function loadAverage(): number | null {
  try {
    const value = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * The warnings for one measurement: `load` is the highest 1-minute load average seen around it
 * (before and after; our own runs count in it, up to about one per CPU), `cpus` the machine's.
 * `sameWork` says that a contender cannot really beat native (the same instructions run).
 */
export function warningsFor(m: Measurement, load: number | null, cpus: number, sameWork = false): string[] {
  const out: string[] = [];
  for (const f of m.figures) {
    const s = f.summary;
    if (!s || s.n < 3) continue;
    if (s.relativeSpread > SPREAD_LIMIT) {
      out.push(`${SUBJECT_LABEL[f.subject]}: the runs spread widely (q1–q3 is ${(s.relativeSpread * 100).toFixed(0)} % of the median); take this figure as rough.`);
    }
  }
  if (sameWork) {
    for (const f of m.figures) {
      const r = f.vsNative;
      if (f.subject === 'native' || r === null) continue;
      const faster = m.higherIsBetter ? r : 1 / r;
      if (faster > FASTER_LIMIT) {
        out.push(`${SUBJECT_LABEL[f.subject]} comes out ${faster.toFixed(2)} times as fast as native on the same instructions: that is noise of this machine, not a speed-up.`);
      }
    }
  }
  if (load !== null && load > cpus * LOAD_LIMIT + 1) {
    out.push(`The machine was busy while this ran (load average ${load.toFixed(1)} on ${cpus} CPUs, ours included): other work competed for the CPUs, so times may be inflated unevenly.`);
  }
  return out;
}
