// The side-by-side view's comparison rows: a saved report of `tsvmm compare` on this machine (a
// fixture: the example in docs/ is renewed), read where compare saves it, shown as medians with
// their ratios to native.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { latestResultsPath, loadLatestResults, saveLatestResults } from '../../src/compare/latest.js';
import type { CompareReport } from '../../src/compare/model.js';
import { comparisonLines, NO_COMPARISON_HINT } from '../../src/tui/compare-view.js';

const example = JSON.parse(readFileSync('test/fixtures/compare-report.json', 'utf8')) as CompareReport;

describe('comparisonLines', () => {
  it('shows the medians of the example report, VM and container, with ratios to native', () => {
    const lines = comparisonLines(example);
    expect(lines[0]).toBe('latest tsvmm compare, 2026-11-23 on vm, 7 runs each: medians, × is the ratio to native');
    expect(lines[1]).toMatch(/^measurement\s+unit\s+VM\s+VM\/native\s+container\s+ctr\/native\s+native$/);
    const row = (title: string) => lines.find((l) => l.startsWith(title))!.split(/\s{2,}/);
    expect(row('Start latency')).toEqual(['Start latency', 'ms', '71.1', '×27', '22.8', '×8.67', '2.63']);
    expect(row('Host memory, steady')).toEqual(['Host memory, steady', 'MiB', '69.7', '×103', '0.219', '×0.32', '0.680']);
    expect(row('CPU-bound throughput')).toEqual(['CPU-bound throughput', 'Mops/s', '889', '×1.03', '839', '×0.97', '864']);
    expect(row('Exit/syscall-heavy work')).toEqual(['Exit/syscall-heavy work', 'µs/op', '9.60', '×54', '0.194', '×1.09', '0.178']);
    expect(row('Sequential write')[2]).toBe('1501');
    expect(row('Sequential read')[2]).toBe('1923');
    expect(row('Density within 1024 MiB')).toEqual(['Density within 1024 MiB', 'instances', '14', '100', '-']);
    expect(row('Snapshot of a paused instance')).toEqual(['Snapshot of a paused instance', 'ms', '86.2', 'n/a', '-']);
    expect(row('Restore from the snapshot')).toEqual(['Restore from the snapshot', 'ms', '18.9', 'n/a', '-']);
    expect(lines).toHaveLength(2 + 9);
  });

  it('shows the newer figures of the docs example: private memory, a capped density as ≥ N (cap), snapshot size, network', () => {
    const docs = JSON.parse(readFileSync('docs/compare-example.json', 'utf8')) as CompareReport;
    const lines = comparisonLines(docs);
    const row = (title: string) => lines.find((l) => l.startsWith(title))!.split(/\s{2,}/);
    expect(row('Host memory, private')[1]).toBe('MiB');
    expect(row('Density within 1024 MiB')).toContain('≥ 100 (cap)');
    expect(row('Snapshot size on disk')[1]).toBe('MiB');
    expect(row('Network send (UDP)')[1]).toBe('Mbit/s');
    expect(row('Network receive (UDP)')[1]).toBe('Mbit/s');
    expect(lines).toHaveLength(2 + 13);
  });

  it('gives the hint when there is no comparison, and says why when it cannot be read', () => {
    expect(comparisonLines(undefined)).toEqual([NO_COMPARISON_HINT]);
    expect(NO_COMPARISON_HINT).toBe('run `tsvmm compare` to see how they compare on this machine');
    expect(comparisonLines(undefined, 'bad JSON')).toEqual(['the latest comparison could not be read: bad JSON', NO_COMPARISON_HINT]);
  });
});

describe('the latest results file', () => {
  it('is TSVMM_COMPARE_RESULTS, else under XDG_CACHE_HOME, else ~/.cache', () => {
    expect(latestResultsPath({ TSVMM_COMPARE_RESULTS: '/tmp/r.json', XDG_CACHE_HOME: '/c' })).toBe('/tmp/r.json');
    expect(latestResultsPath({ XDG_CACHE_HOME: '/c' })).toBe('/c/tsvmm/compare-latest.json');
    expect(latestResultsPath({})).toMatch(/\/\.cache\/tsvmm\/compare-latest\.json$/);
  });

  it('round-trips a report, is undefined when missing and refuses what is not a report', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-latest-'));
    const file = path.join(dir, 'sub', 'latest.json');
    expect(loadLatestResults(file)).toBeUndefined();
    expect(saveLatestResults(example, file)).toBe(file);
    expect(loadLatestResults(file)).toEqual(example);
    writeFileSync(file, '{"tool":"something else"}');
    expect(() => loadLatestResults(file)).toThrow(/not a tsvmm compare report/);
  });
});
