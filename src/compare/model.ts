// What `tsvmm compare` reports: measurements, each with one figure per contender (native, container,
// VM). A figure is its runs (the measured values, in its unit) and their summary; a figure that
// cannot be measured says why instead (`na`), and has no runs and no number.

import { summarize, type Summary } from './stats.js';

export type Subject = 'native' | 'container' | 'vm';
export const SUBJECTS: readonly Subject[] = ['native', 'container', 'vm'];
export const SUBJECT_LABEL: Record<Subject, string> = { native: 'native', container: 'container', vm: 'VM' };

export interface Figure {
  subject: Subject;
  /** What ran, in words a reader can repeat. */
  method: string;
  unit: string;
  /** One value per run, in `unit`, in the order they were measured. Empty when `na`. */
  runs: number[];
  summary: Summary | null;
  /** This figure's median over the native one's (same measurement), if both exist. */
  vsNative: number | null;
  /** Why there is no figure (then `runs` is empty and `summary` null). */
  na?: string;
  /**
   * The figure is a lower bound, and why: a count that stopped at the test's cap ("cap"), not at
   * the limit measured. Shown as "≥ N (cap)".
   */
  atLeast?: string;
}

export interface Measurement {
  id: string;
  title: string;
  /** What it measures and how, one or two sentences. */
  description: string;
  unit: string;
  higherIsBetter: boolean;
  figures: Figure[];
  /** Checks and caveats found while measuring (e.g. "the LCG results agree: 0x…"). */
  notes: string[];
  /** Why a figure may not be trusted: runs spread widely, a busy machine (reliability.ts). */
  warnings?: string[];
}

export interface Machine {
  hostname: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryMiB: number;
  /** KVM usable (/dev/kvm opens read-write). */
  kvm: boolean;
  /** KVM present but the CPU shows no vmx/svm: this KVM is nested on a software-assisted backend. */
  nestedKvm: boolean;
  /** How nestedKvm was decided, in words. */
  kvmDetail: string;
  cgroups: string;
  node: string;
}

export interface CompareReport {
  tool: 'tsvmm compare';
  version: string;
  /** ISO 8601, when the run started. */
  date: string;
  quick: boolean;
  options: Record<string, number | string | boolean>;
  machine: Machine;
  durationMs: number;
  measurements: Measurement[];
}

/** A measured figure. Throws if a run is not a finite number. */
export function measured(subject: Subject, method: string, unit: string, runs: number[]): Figure {
  return { subject, method, unit, runs: [...runs], summary: summarize(runs), vsNative: null };
}

/** A figure that has no number, and why. */
export function notAvailable(subject: Subject, method: string, unit: string, reason: string): Figure {
  return { subject, method, unit, runs: [], summary: null, vsNative: null, na: reason };
}

/** Fills in each figure's ratio to the native figure of the same measurement. */
export function withRatios(m: Measurement): Measurement {
  const native = m.figures.find((f) => f.subject === 'native' && f.summary);
  for (const f of m.figures) {
    f.vsNative = native?.summary && f.summary && native.summary.median !== 0 ? f.summary.median / native.summary.median : null;
  }
  return m;
}
