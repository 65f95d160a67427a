// The report of `tsvmm compare`: figures and ratios, the terminal table, the self-contained HTML
// (every figure, its unit, runs, median and spread, the machine and date, no external resources),
// the machine's KVM kind and the options of --quick.

import { describe, expect, it } from 'vitest';
import { measured, notAvailable, withRatios, type CompareReport, type Measurement } from '../../src/compare/model.js';
import { chart, fmt, logTicks, niceTicks, renderHtml, renderJson, renderTable } from '../../src/compare/report.js';
import { kvmKind } from '../../src/compare/machine.js';
import { warningsFor } from '../../src/compare/reliability.js';
import { resolveOptions } from '../../src/compare/harness.js';

function sample(): CompareReport {
  const cpu: Measurement = withRatios({
    id: 'cpu', title: 'CPU-bound throughput', unit: 'Mops/s', higherIsBetter: true, notes: ['The result agrees.'],
    description: 'LCG steps.',
    figures: [
      measured('native', 'compare-work lcg', 'Mops/s', [800, 820, 810]),
      measured('container', 'the same in a container', 'Mops/s', [790, 805, 801]),
      measured('vm', 'test.elf cpl3', 'Mops/s', [850, 870, 860]),
    ],
  });
  const exits: Measurement = withRatios({
    id: 'exits', title: 'Exit/syscall-heavy work', unit: 'µs/op', higherIsBetter: false, notes: [], description: 'Round trips.',
    figures: [
      measured('native', 'getppid', 'µs/op', [0.1, 0.12, 0.11]),
      measured('container', 'getppid in a container', 'µs/op', [0.1, 0.1, 0.1]),
      measured('vm', 'outb <exits>', 'µs/op', [13, 12.5, 14]),
    ],
  });
  const snap: Measurement = withRatios({
    id: 'snapshot-save', title: 'Snapshot of a paused instance', unit: 'ms', higherIsBetter: false, notes: [], description: 'Save.',
    figures: [notAvailable('container', 'checkpoint', 'ms', 'tsvmm has no container checkpoint (no CRIU)'), measured('vm', 'vm.snapshot()', 'ms', [15, 16, 14])],
  });
  return {
    tool: 'tsvmm compare', version: '0.1.0', date: '2026-11-23T03:00:00.000Z', quick: true,
    options: { runs: 3, quick: true }, durationMs: 12_345,
    machine: {
      hostname: 'devbox', kernel: 'Linux 6.18.44', cpuModel: 'AMD EPYC', cpus: 2, memoryMiB: 24105, kvm: true, nestedKvm: true,
      kvmDetail: 'nested', cgroups: 'v1', node: 'v20.20.2',
    },
    measurements: [cpu, exits, snap],
  };
}

describe('figures', () => {
  it('hold their runs, summary and ratio to native', () => {
    const r = sample();
    const [native, container, vm] = r.measurements[0]!.figures;
    expect(native!.summary!.median).toBe(810);
    expect(native!.vsNative).toBe(1);
    expect(container!.vsNative).toBeCloseTo(801 / 810);
    expect(vm!.vsNative).toBeCloseTo(860 / 810);
    expect(vm!.runs).toEqual([850, 870, 860]);
  });

  it('without a number say why, and have no runs', () => {
    const f = sample().measurements[2]!.figures[0]!;
    expect(f).toMatchObject({ runs: [], summary: null, vsNative: null, na: expect.stringContaining('CRIU') });
  });

  it('have no ratio when there is no native figure', () => {
    expect(sample().measurements[2]!.figures[1]!.vsNative).toBeNull();
  });
});

describe('the terminal table', () => {
  it('shows each measurement with its unit, median and quartiles, ratios, the machine and the n/a reasons', () => {
    const t = renderTable(sample());
    expect(t).toContain('nested KVM: yes');
    expect(t).toMatch(/CPU-bound throughput\s+Mops\/s\s+810 \(805–815\)\s+801 \(796–803\)\s+860 \(855–865\)\s+×0\.99\s+×1\.06/);
    expect(t).toMatch(/Exit\/syscall-heavy work\s+µs\/op/);
    expect(t).toMatch(/Snapshot of a paused instance\s+ms\s+-\s+n\/a\s+15 \(14\.5–15\.5\)/);
    expect(t).toContain('n/a: container (Snapshot of a paused instance): tsvmm has no container checkpoint (no CRIU)');
    expect(t).toContain('CPU-bound throughput: The result agrees.');
  });
});

describe('the JSON report', () => {
  it('is the report itself', () => {
    const r = sample();
    expect(JSON.parse(renderJson(r))).toEqual(JSON.parse(JSON.stringify(r)));
  });
});

describe('the HTML report', () => {
  const html = renderHtml(sample());

  it('is self-contained: no scripts, links, images or fonts from elsewhere', () => {
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/@import|url\(/);
    expect(html).not.toContain('<script');
  });

  it('names the machine, the kernel, nested KVM and the date', () => {
    for (const s of ['AMD EPYC', '2 CPUs', 'Linux 6.18.44', 'nested KVM</dt><dd>yes', '2026-11-23T03:00:00.000Z', 'v20.20.2']) expect(html).toContain(s);
  });

  it('has a chart and a table row for every figure, with unit, runs, median and spread', () => {
    const r = sample();
    for (const m of r.measurements) {
      expect(html).toContain(`<section id="${m.id}">`);
      expect(html).toContain(`aria-label="${m.title} in ${m.unit}"`);
      for (const f of m.figures) {
        if (!f.summary) {
          expect(html).toContain(`<td>n/a</td><td></td><td></td><td></td><td class="runs">${f.na}</td>`);
          continue;
        }
        expect(html).toContain(`<td>${f.unit}</td><td>${fmt(f.summary.median)}</td><td>${fmt(f.summary.q1)}–${fmt(f.summary.q3)}</td><td>${fmt(f.summary.min)}–${fmt(f.summary.max)}</td>`);
        expect(html).toContain(f.runs.map(fmt).join(', '));
      }
    }
    expect(html).toContain('outb &#60;exits&#62;'); // text is escaped
  });

  it('draws a log scale when the figures span orders of magnitude, with its unit apart from the ticks', () => {
    const log = chart(sample().measurements[1]!);
    expect(log).toContain('>log scale</text>');
    expect(log).toContain('class="tick unit">µs/op</text>');
    // More than one labelled tick on a log axis: 0.1, 0.2, 0.5, 1, ... 10.
    expect([...log.matchAll(/class="tick">([^<]+)</g)].length).toBeGreaterThanOrEqual(4);
    expect(chart(sample().measurements[0]!)).not.toContain('log scale');
  });

  it('puts ticks on round values and the median label at the median', () => {
    expect(niceTicks(870)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceTicks(14)).toEqual([0, 5, 10, 15]);
    expect(niceTicks(0.5)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(logTicks(0.08, 18)).toEqual([0.1, 0.3, 1, 3, 10]);
    expect(logTicks(0.5, 30)).toEqual([0.5, 1, 2, 5, 10, 20]);
    expect(logTicks(2, 90)).toEqual([2, 5, 10, 20, 50]);
    const svg = chart(sample().measurements[0]!);
    const tick = [...svg.matchAll(/class="tick">([^<]+)</g)].map((m) => m[1]);
    expect(tick).toEqual(['0', '200', '400', '600', '800', '1000']);
    // The VM's median (860) is labelled above its median line, not at its max whisker.
    const line = /<line x1="([\d.]+)" x2="[\d.]+" y1="[\d.]+" y2="[\d.]+" stroke="#e15759" stroke-width="3">/.exec(svg)!;
    const label = /<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" class="val">860<\/text>/.exec(svg)!;
    expect(Number(label[1])).toBeCloseTo(Number(line[1]), 0);
  });

  it('shows a capped count as a lower bound, warnings, what each column ran, and the isolation table', () => {
    const r = sample();
    const density = withRatios({
      id: 'density', title: 'Density', unit: 'instances', higherIsBetter: true, notes: [], description: 'Fleet.',
      figures: [{ ...measured('container', 'containers', 'instances', [100, 100, 100]), atLeast: 'cap' }, measured('vm', 'VMs', 'instances', [14, 15, 14])],
      warnings: ['VM: the runs spread widely'],
    });
    r.measurements.push(density);
    const table = renderTable(r);
    expect(table).toMatch(/Density\s+instances\s+-\s+≥ 100 \(cap\)\s+14/);
    expect(table).toContain('warning: Density: VM: the runs spread widely');
    expect(table).toContain('test.elf, a tiny test kernel');
    expect(table).toContain('nested on a software-assisted backend');
    const html = renderHtml(r);
    expect(html).toContain('<td>≥ 100 (cap)</td>');
    expect(html).toContain('<ul class="warnings"><li>VM: the runs spread widely</li></ul>');
    expect(html).toContain('<h2>What each one isolates</h2>');
    expect(chart(density)).toContain('class="val">≥ 100 (cap)</text>');
  });
});

describe('warnings', () => {
  it('say when runs spread widely, the machine was busy, or a contender beats native on the same instructions', () => {
    const cpu = withRatios({
      id: 'cpu', title: 'CPU', unit: 'Mops/s', higherIsBetter: true, notes: [], description: 'LCG.',
      figures: [measured('native', 'a', 'Mops/s', [100, 101, 99]), measured('container', 'b', 'Mops/s', [150, 151, 149]), measured('vm', 'c', 'Mops/s', [50, 150, 100, 90])],
    });
    const w = warningsFor(cpu, 5, 2, true);
    expect(w).toEqual([
      expect.stringMatching(/^VM: the runs spread widely \(q1–q3 is \d+ % of the median\)/),
      expect.stringMatching(/^container comes out 1\.50 times as fast as native on the same instructions/),
      'The machine was busy while this ran (load average 5.0 on 2 CPUs, ours included): other work competed for the CPUs, so times may be inflated unevenly.',
    ]);
    // A quiet machine, tight runs, and work that may differ: nothing to say.
    expect(warningsFor(cpu, 1.2, 2, false).filter((x) => !x.startsWith('VM'))).toEqual([]);
    expect(warningsFor(cpu, null, 2, false).some((x) => x.includes('busy'))).toBe(false);
  });
});

describe('the machine', () => {
  it('calls KVM nested when the CPU shows no vmx/svm', () => {
    expect(kvmKind('flags\t\t: fpu vme hypervisor lm\n', true).nested).toBe(true);
    expect(kvmKind('flags\t\t: fpu vmx lm\n', true)).toMatchObject({ nested: false, detail: expect.stringContaining('bare metal') });
    expect(kvmKind('flags\t\t: fpu svm hypervisor\n', true).nested).toBe(true);
    expect(kvmKind('flags\t\t: fpu vmx\n', false)).toMatchObject({ nested: false, detail: 'no usable /dev/kvm' });
  });
});

describe('options', () => {
  it('--quick runs fewer, smaller passes', () => {
    const q = resolveOptions({ quick: true });
    const full = resolveOptions({});
    expect(q.runs).toBeLessThan(full.runs);
    // The CPU loop is not shortened: the VM's figure would drown in boot jitter.
    expect(q.lcgLoops).toBe(full.lcgLoops);
    expect(q.ioBytes).toBeLessThan(full.ioBytes);
    expect(full.budgetBytes).toBe(2 ** 30);
    expect(resolveOptions({ budget: '512M' }).budgetBytes).toBe(512 * 2 ** 20);
    expect(() => resolveOptions({ runs: 0 })).toThrow(/--runs 0/);
    expect(() => resolveOptions({ budget: '12X' })).toThrow(/^--budget "12X": not a size/);
    expect(() => resolveOptions({ budget: '1M' })).toThrow(/--budget 1M: less than one instance/);
  });
});

describe('numbers', () => {
  it('keep about three significant digits, whole numbers as they are', () => {
    expect([fmt(40), fmt(1234.5), fmt(123.4), fmt(12.34), fmt(1.234), fmt(0.1234), fmt(0)]).toEqual(['40', '1235', '123', '12.3', '1.23', '0.123', '0']);
  });
});
