// `tsvmm compare --quick` end to end on this machine: the JSON report's structure and units, every
// figure measured (runs, a summary computed from them) or "n/a" with a reason, the LCG results of
// native, container and VM in agreement, and the HTML report holding every figure.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CompareReport } from '../../src/compare/model.js';
import { fmt } from '../../src/compare/report.js';
import { summarize } from '../../src/compare/stats.js';
import { kvmMissingReason } from '../helpers/kvm.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXPECTED = [
  ['start', 'ms'], ['memory-steady', 'MiB'], ['memory-peak', 'MiB'], ['cpu', 'Mops/s'], ['exits', 'µs/op'],
  ['io-write', 'MB/s'], ['io-read', 'MB/s'], ['density', 'instances'], ['density-time', 'ms/instance'],
  ['snapshot-save', 'ms'], ['snapshot-restore', 'ms'],
];

describe('tsvmm compare --quick', () => {
  const html = path.join(dir, 'report.html');
  let report: CompareReport;
  let seconds = 0;

  it('runs in under a minute and prints a JSON report', () => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['bin/tsvmm.js', 'compare', '--quick', '--json', '--html', html], { encoding: 'utf8', timeout: 90_000 });
    seconds = (performance.now() - t0) / 1000;
    expect(r.status, r.stderr).toBe(0);
    expect(seconds).toBeLessThan(60);
    report = JSON.parse(r.stdout) as CompareReport;
    expect(report.tool).toBe('tsvmm compare');
    expect(report.quick).toBe(true);
    expect(new Date(report.date).getTime()).toBeGreaterThan(Date.now() - 120_000);
  }, 100_000);

  it('describes the machine', () => {
    const m = report.machine;
    expect(m.kernel).toMatch(/^Linux \d/);
    expect(m.cpuModel.length).toBeGreaterThan(0);
    expect(m.cpus).toBeGreaterThan(0);
    expect(typeof m.nestedKvm).toBe('boolean');
    expect(m.kvm).toBe(!kvmMissingReason);
  });

  it('has every measurement, each with its unit on every figure', () => {
    expect(report.measurements.map((m) => [m.id, m.unit])).toEqual(EXPECTED);
    for (const m of report.measurements) {
      expect(m.title.length).toBeGreaterThan(0);
      expect(m.description.length).toBeGreaterThan(0);
      expect(m.figures.length).toBeGreaterThan(0);
      for (const f of m.figures) {
        expect(f.unit, `${m.id} ${f.subject}`).toBe(m.unit);
        expect(f.method.length).toBeGreaterThan(0);
      }
    }
  });

  it('takes every number from runs: runs, and a summary computed from them, or n/a with a reason', () => {
    const runs = Number(report.options.runs);
    for (const m of report.measurements) {
      for (const f of m.figures) {
        const what = `${m.id} ${f.subject}`;
        if (f.na !== undefined) {
          expect(f.na.length, what).toBeGreaterThan(0);
          expect(f.runs, what).toEqual([]);
          expect(f.summary, what).toBeNull();
          continue;
        }
        expect(f.runs.length, what).toBe(m.id.startsWith('density') ? Number(report.options.densityRuns) : runs);
        for (const v of f.runs) expect(Number.isFinite(v) && v >= 0, `${what}: ${v}`).toBe(true);
        expect(f.summary, what).toEqual(summarize(f.runs));
        const native = m.figures.find((g) => g.subject === 'native')?.summary?.median;
        if (native) expect(f.vsNative, what).toBeCloseTo(f.summary!.median / native, 9);
      }
    }
  });

  it('measures what this machine can run, and says plainly there is no container checkpoint', () => {
    const fig = (id: string, subject: string) => report.measurements.find((m) => m.id === id)!.figures.find((f) => f.subject === subject)!;
    for (const id of ['start', 'cpu', 'exits', 'io-write', 'io-read', 'memory-steady']) expect(fig(id, 'native').summary, id).not.toBeNull();
    if (!kvmMissingReason) {
      for (const id of ['start', 'cpu', 'exits', 'io-read', 'density', 'snapshot-save']) expect(fig(id, 'vm').na, id).toBeUndefined();
      expect(fig('density', 'vm').summary!.median).toBeGreaterThan(0);
    }
    expect(fig('snapshot-save', 'container').na).toMatch(/no container checkpoint.*CRIU/);
    expect(fig('snapshot-save', 'container').runs).toEqual([]);
    const cpuNote = report.measurements.find((m) => m.id === 'cpu')!.notes.join(' ');
    expect(cpuNote).toMatch(/agrees in every run/);
  });

  it('writes an HTML report with every figure, its unit and runs', () => {
    const page = readFileSync(html, 'utf8');
    expect(page).not.toMatch(/https?:\/\//);
    expect(page).toContain(report.machine.kernel);
    expect(page).toContain(report.date);
    for (const m of report.measurements) {
      expect(page).toContain(`<section id="${m.id}">`);
      for (const f of m.figures) {
        if (!f.summary) continue;
        expect(page).toContain(`<td>${fmt(f.summary.median)}</td>`);
        expect(page).toContain(f.runs.map(fmt).join(', '));
      }
    }
  });
});
