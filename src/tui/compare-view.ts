// The side-by-side view's lower half: the medians of the latest `tsvmm compare` (the report it
// saves, compare/latest.ts) for a VM and a container, with their ratios to native. Pure text.

import type { CompareReport, Subject } from '../compare/model.js';
import { figureValue, ratio } from '../compare/report.js';

export const NO_COMPARISON_HINT = 'run `tsvmm compare` to see how they compare on this machine';

/** The measurements shown, in this order, those the report has (memory, I/O, network and snapshots have several). */
export const SHOWN = ['start', 'memory-steady', 'memory-private', 'cpu', 'exits', 'io-write', 'io-read', 'net-send', 'net-receive', 'density', 'snapshot-save', 'snapshot-restore', 'snapshot-disk'] as const;

/** The lines of the view: a title, a header and one row per measurement; the hint when there is no report. */
export function comparisonLines(report: CompareReport | undefined, error?: string): string[] {
  if (error) return [`the latest comparison could not be read: ${error}`, NO_COMPARISON_HINT];
  if (!report) return [NO_COMPARISON_HINT];
  const measurements = SHOWN.map((id) => report.measurements.find((m) => m.id === id)).filter((m) => m !== undefined);
  const rows = measurements.map((m) => {
    const by = (s: Subject) => m.figures.find((f) => f.subject === s);
    return [m.title, m.unit, figureValue(by('vm')), ratio(by('vm')?.vsNative ?? null), figureValue(by('container')), ratio(by('container')?.vsNative ?? null), figureValue(by('native'))];
  });
  const header = ['measurement', 'unit', 'VM', 'VM/native', 'container', 'ctr/native', 'native'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const runs = report.options.runs === undefined ? '' : `, ${String(report.options.runs)} runs each`;
  return [
    `latest tsvmm compare, ${report.date.slice(0, 10)} on ${report.machine.hostname}${report.quick ? ' (quick)' : ''}${runs}: medians, × is the ratio to native`,
    line(header),
    ...rows.map(line),
  ];
}
