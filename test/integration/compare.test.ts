// `tsvmm compare --quick` end to end on this machine: the JSON report's structure and units, every
// figure measured (runs, a summary computed from them) or "n/a" with a reason, the LCG results of
// native, container and VM in agreement, network throughput both ways by the same method, and
// the HTML report holding every figure.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CompareReport } from '../../src/compare/model.js';
import { figureValue, fmt } from '../../src/compare/report.js';
import { summarize } from '../../src/compare/stats.js';
import { kvmMissingReason } from '../helpers/kvm.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXPECTED = [
  ['start', 'ms'], ['start-create', 'ms'], ['start-run', 'ms'], ['memory-steady', 'MiB'], ['memory-private', 'MiB'], ['memory-peak', 'MiB'], ['cpu', 'Mops/s'], ['exits', 'µs/op'],
  ['io-write', 'MB/s'], ['io-read', 'MB/s'],
  ['net-send', 'Mbit/s'], ['net-send-pps', 'packets/s'], ['net-receive', 'Mbit/s'], ['net-receive-pps', 'packets/s'], ['density', 'instances'], ['density-time', 'ms/instance'],
  ['snapshot-save', 'ms'], ['snapshot-restore', 'ms'], ['snapshot-disk', 'MiB'],
];

describe('tsvmm compare checks its arguments and output paths before measuring', () => {
  const run = (args: string[]) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['bin/tsvmm.js', 'compare', '--quick', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, stderr: r.stderr, stdout: r.stdout, ms: performance.now() - t0 };
  };

  it.each([
    [['--runs', '0'], 'tsvmm: error: --runs 0: must be at least 1'],
    [['--runs', 'x'], 'tsvmm: error: --runs x: not a whole number (use decimal digits)'],
    [['--budget', '12X'], 'tsvmm: error: --budget "12X": not a size (try 256M or 1G)'],
    [['--budget', '1M'], 'tsvmm: error: --budget 1M: less than one instance (32M); try 256M or more'],
    [['--html', '/nonexistent-dir/report.html'], 'tsvmm: error: --html /nonexistent-dir/report.html: the directory /nonexistent-dir does not exist'],
    [['--html', tmpdir()], `tsvmm: error: --html ${tmpdir()}: is a directory; name a file in it`],
    [['--html', '/etc/hostname/report.html'], 'tsvmm: error: --html /etc/hostname/report.html: /etc/hostname is not a directory'],
    [['--html='], 'tsvmm: error: --html needs a file name'],
  ])('%j: one line, exit 1, nothing measured or written', (args, line) => {
    const r = run(args as string[]);
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.ms).toBeLessThan(10_000);
  });
});

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
        expect(f.runs.length, what).toBe(m.id.startsWith('density') ? Number(report.options.densityRuns) : m.id.startsWith('net') ? Number(report.options.netRuns) : runs);
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

  it('counts memory the same way for both: PSS and private memory, the container\'s helper included', () => {
    const m = (id: string) => report.measurements.find((x) => x.id === id)!;
    const fig = (id: string, subject: string) => m(id).figures.find((f) => f.subject === subject)!;
    expect(fig('memory-steady', 'vm').method).toMatch(/PSS of the whole VMM process/);
    expect(fig('memory-steady', 'container').method).toMatch(/cgroup's charge plus the PSS of its helper process/);
    expect(fig('memory-private', 'vm').method).toMatch(/private memory of the whole VMM process/);
    expect(m('memory-steady').notes.join(' ')).toMatch(/PSS \(proportional set size\)/);
    for (const subject of ['native', 'container', 'vm']) {
      const pss = fig('memory-steady', subject);
      const own = fig('memory-private', subject);
      if (!pss.summary || !own.summary) continue;
      // Private pages are part of the PSS: never more (within a page of rounding per run).
      expect(own.summary.median, subject).toBeLessThanOrEqual(pss.summary.median + 0.01);
    }
    if (!kvmMissingReason) {
      // A snapshot's holes take no disk: less than the guest's RAM.
      expect(fig('snapshot-disk', 'vm').summary!.median).toBeLessThan(32);
    }
  });

  it('breaks the start into create() and start() → first line, which add up run by run', () => {
    const fig = (id: string, subject: string) => report.measurements.find((m) => m.id === id)!.figures.find((f) => f.subject === subject)!;
    for (const subject of ['container', 'vm']) {
      const total = fig('start', subject);
      if (!total.summary) continue;
      const create = fig('start-create', subject).runs;
      const run = fig('start-run', subject).runs;
      expect(create).toHaveLength(total.runs.length);
      total.runs.forEach((t, i) => expect(create[i]! + run[i]!, `${subject} run ${i}`).toBeCloseTo(t, 6));
    }
    expect(fig('start-create', 'native').na).toMatch(/no separate set-up/);
  });

  it('shows a count stopped by the cap as a lower bound, and says what each column ran', () => {
    const density = report.measurements.find((x) => x.id === 'density')!;
    for (const f of density.figures) {
      if (!f.summary) continue;
      if (f.runs.some((v) => v === Number(report.options.densityCap))) expect(f.atLeast, f.subject).toBe('cap');
    }
    const capped = density.figures.find((f) => f.atLeast === 'cap');
    const table = spawnSync(process.execPath, ['-e', `import('./dist/compare/report.js').then((r) => process.stdout.write(r.renderTable(${JSON.stringify(report)})))`], { encoding: 'utf8' }).stdout;
    if (capped) expect(table).toContain(`≥ ${fmt(capped.summary!.median)} (cap)`);
    expect(table).toContain('VM: test.elf, a tiny test kernel');
    for (const m of report.measurements) for (const w of m.warnings ?? []) expect(w.length).toBeGreaterThan(10);
  });

  it('measures network throughput both ways, every side by the same method, in Mbit/s and packets/s', () => {
    const m = (id: string) => report.measurements.find((x) => x.id === id)!;
    for (const dir of ['send', 'receive']) {
      const mbit = m(`net-${dir}`);
      const pps = m(`net-${dir}-pps`);
      expect(mbit.higherIsBetter).toBe(true);
      expect(mbit.description).toMatch(/UDP datagrams of 1472 bytes .* the receiver counts from its first datagram to its last/);
      expect(mbit.notes.join(' ')).toMatch(/^Lost on the way: native: \d+\.\d% of the datagrams sent did not arrive/);
      expect(mbit.figures.find((f) => f.subject === 'native')!.summary, dir).not.toBeNull();
      for (const f of mbit.figures) {
        const p = pps.figures.find((g) => g.subject === f.subject)!;
        expect(p.na).toBe(f.na);
        // The same runs: packets/s is the payload rate over 1472 bytes × 8.
        f.runs.forEach((v, i) => expect(p.runs[i]! * 1472 * 8 / 1e6, `${dir} ${f.subject} run ${i}`).toBeCloseTo(v, 6));
      }
      const vm = mbit.figures.find((f) => f.subject === 'vm')!;
      expect(vm.method).toMatch(/virtio\.elf mode=net op=stream dir=(send|recv)/);
      if (!kvmMissingReason && process.getuid?.() === 0) expect(vm.na, dir).toBeUndefined();
      const container = mbit.figures.find((f) => f.subject === 'container')!;
      expect(container.method).toMatch(/--net veth/);
      if (process.getuid?.() === 0) expect(container.na, dir).toBeUndefined();
    }
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
        expect(page).toContain(`<td>${figureValue(f)}</td>`);
        expect(page).toContain(f.runs.map(fmt).join(', '));
      }
    }
  });
});
